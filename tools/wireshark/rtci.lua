-- Wireshark dissector for the RTCoInfer wire protocol, version 1 (docs/protocol.md).
--
--   wireshark -X lua_script:tools/wireshark/rtci.lua capture.pcap
--   tshark -X lua_script:tools/wireshark/rtci.lua -r capture.pcap -Y rtci
--   or copy this file to ~/.local/lib/wireshark/plugins/
--
-- Decodes UDP port 47000 (preference "rtci.udp_port") and, heuristically, any UDP datagram
-- that starts with the magic "RTCI". Validation follows dataplane/protocol.c rule by rule, in
-- the same order: the first broken rule becomes an expert info (group Malformed) naming the
-- project's error code, so a capture reads like the gateway's ingest drop counters.
-- Fragments of a frame are collected by (tenant, device, seq); the packet that completes a
-- frame shows the reassembled frame as a data source of its own. Tags are shown, not verified
-- (that needs the device key).

local rtci = Proto("rtci", "RTCoInfer")

local MAGIC = 0x52544349
local HDR_LEN = 48
local TAG_LEN = 16

local types = { [1] = "fragment", [2] = "result", [3] = "command", [4] = "hello",
	[5] = "hello-ack", [6] = "report" }
local result_status = { [0] = "ok", [1] = "dropped: deadline", [2] = "dropped: overload",
	[3] = "payload did not decode" }
local ack_status = { [0] = "accepted", [1] = "rejected: unknown model", [2] = "rejected: quota",
	[3] = "busy", [4] = "redirect" }
local cmd_kinds = { [1] = "rate switch", [2] = "plan", [3] = "move" }

-- error codes of common/rtci_error.h and their rtci_strerror() texts
local errors = {
	TRUNCATED = "datagram truncated", BAD_MAGIC = "bad magic",
	BAD_VERSION = "unsupported protocol version", BAD_TYPE = "unknown message type",
	BAD_HDR_LEN = "bad header length", TAG_FLAG = "tag flag inconsistent with message",
	FRAG_COUNT = "bad fragment count", FRAG_INDEX = "fragment index out of range",
	FRAG_SIZE = "bad fragment size", FRAME_LEN = "frame length inconsistent with fragments",
	PAYLOAD_LEN = "fragment payload length wrong", BODY_LEN = "message body length wrong",
	BAD_STATUS = "unknown status", BAD_TOPK = "too many top-k entries",
	BAD_COMMAND = "unknown command", BAD_SETUPS = "too many setups",
	RESERVED = "reserved field not zero",
}

local f = {
	magic = ProtoField.uint32("rtci.magic", "Magic", base.HEX),
	version = ProtoField.uint8("rtci.version", "Version"),
	type = ProtoField.uint8("rtci.type", "Type", base.DEC, types),
	hdr_len = ProtoField.uint8("rtci.hdr_len", "Header length"),
	flags = ProtoField.uint8("rtci.flags", "Flags", base.HEX),
	flag_tag = ProtoField.bool("rtci.flags.tag", "Tag", 8, nil, 0x01),
	flag_ack_ext = ProtoField.bool("rtci.flags.ack_ext", "Takes the extended hello-ack (hello)", 8,
		nil, 0x02),
	tenant = ProtoField.uint32("rtci.tenant", "Tenant"),
	device = ProtoField.uint32("rtci.device", "Device"),
	seq = ProtoField.uint64("rtci.seq", "Sequence"),
	setup = ProtoField.uint16("rtci.setup", "Setup"),
	frag_index = ProtoField.uint16("rtci.frag_index", "Fragment index"),
	frag_count = ProtoField.uint16("rtci.frag_count", "Fragment count"),
	frag_size = ProtoField.uint16("rtci.frag_size", "Fragment size"),
	frame_len = ProtoField.uint32("rtci.frame_len", "Frame length"),
	backlog = ProtoField.uint32("rtci.backlog", "Backlog bytes (not authenticated)"),
	capture_us = ProtoField.uint64("rtci.capture_us", "Capture time (device clock, us)"),
	hdr_extra = ProtoField.bytes("rtci.hdr_extra", "Header bytes beyond v1"),
	payload = ProtoField.bytes("rtci.payload", "Fragment payload"),
	tag = ProtoField.bytes("rtci.tag", "Tag (Poly1305, not verified)"),
	body = ProtoField.bytes("rtci.body", "Body"),

	frag_offset = ProtoField.uint32("rtci.reasm.offset", "Frame offset of this fragment"),
	reasm_in = ProtoField.framenum("rtci.reasm.in", "Frame reassembled in"),
	reasm_frag = ProtoField.framenum("rtci.reasm.fragment", "Fragment"),
	reasm_len = ProtoField.uint32("rtci.reasm.length", "Reassembled frame length"),
	reasm_data = ProtoField.bytes("rtci.reasm.data", "Reassembled frame"),
	reasm_dup = ProtoField.framenum("rtci.reasm.duplicate_of", "Duplicate of the fragment in"),

	res_class = ProtoField.uint16("rtci.result.class", "Class"),
	res_status = ProtoField.uint8("rtci.result.status", "Status", base.DEC, result_status),
	res_topk = ProtoField.uint8("rtci.result.topk_count", "Top-k entries"),
	res_score = ProtoField.float("rtci.result.score", "Score"),
	res_queue = ProtoField.uint32("rtci.result.queue_us", "Queue time (us)"),
	res_infer = ProtoField.uint32("rtci.result.inference_us", "Inference time (us)"),
	res_total = ProtoField.uint32("rtci.result.total_us", "Total time (us)"),
	topk_class = ProtoField.uint16("rtci.result.topk.class", "Class"),
	topk_reserved = ProtoField.uint16("rtci.result.topk.reserved", "Reserved"),
	topk_score = ProtoField.float("rtci.result.topk.score", "Score"),

	cmd_kind = ProtoField.uint8("rtci.cmd.kind", "Kind", base.DEC, cmd_kinds),
	cmd_count = ProtoField.uint8("rtci.cmd.count", "Count"),
	cmd_setup = ProtoField.uint16("rtci.cmd.setup", "New setup"),
	cmd_from = ProtoField.uint64("rtci.cmd.apply_from_seq", "Apply from frame"),
	cmd_plan = ProtoField.uint16("rtci.cmd.plan", "Plan step"),
	cmd_port = ProtoField.uint16("rtci.cmd.move_port", "Move to port"),
	cmd_ip = ProtoField.ipv4("rtci.cmd.move_ip", "Move to address"),
	cmd_reserved = ProtoField.bytes("rtci.cmd.reserved", "Reserved"),

	hello_model = ProtoField.uint32("rtci.hello.model", "Model"),
	hello_fps = ProtoField.uint32("rtci.hello.fps_milli", "Frame rate x 1000"),
	hello_deadline = ProtoField.uint32("rtci.hello.deadline_us", "Deadline (us)"),
	hello_frag = ProtoField.uint16("rtci.hello.max_frag_size", "Largest fragment payload"),
	hello_n = ProtoField.uint16("rtci.hello.n_setups", "Setups"),
	hello_setup = ProtoField.uint16("rtci.hello.setup", "Setup"),

	ack_status = ProtoField.uint8("rtci.ack.status", "Status", base.DEC, ack_status),
	ack_reserved = ProtoField.uint8("rtci.ack.reserved", "Reserved"),
	ack_setup = ProtoField.uint16("rtci.ack.initial_setup", "Initial setup"),
	ack_frag = ProtoField.uint16("rtci.ack.max_frag_size", "Largest fragment payload"),
	ack_retry = ProtoField.uint16("rtci.ack.retry_after_ms", "Retry after (ms)"),
	ack_min_seq = ProtoField.uint64("rtci.ack.min_frame_seq", "Minimum frame sequence"),
	ack_ip = ProtoField.ipv4("rtci.ack.redirect_ip", "Redirect to address"),
	ack_port = ProtoField.uint16("rtci.ack.redirect_port", "Redirect to port"),
	ack_max_frame = ProtoField.uint32("rtci.ack.max_frame_len", "Largest frame accepted (extended ack)"),

	rep_bytes = ProtoField.uint64("rtci.report.bytes_sent", "Bytes sent"),
	rep_frames = ProtoField.uint32("rtci.report.frames_sent", "Frames sent"),
	rep_dropped = ProtoField.uint32("rtci.report.frames_dropped", "Frames dropped"),
	rep_rate = ProtoField.uint64("rtci.report.send_rate_bps", "Send rate (bit/s)"),
	rep_backlog = ProtoField.uint32("rtci.report.backlog_bytes", "Backlog bytes"),
	rep_interval = ProtoField.uint32("rtci.report.interval_us", "Interval (us)"),
}
local fields = {}
for _, v in pairs(f) do fields[#fields + 1] = v end
rtci.fields = fields

local ef_malformed = ProtoExpert.new("rtci.malformed", "Malformed RTCI datagram",
	expert.group.MALFORMED, expert.severity.ERROR)
local ef_dup = ProtoExpert.new("rtci.reasm.duplicate", "Duplicate fragment",
	expert.group.SEQUENCE, expert.severity.NOTE)
rtci.experts = { ef_malformed, ef_dup }

rtci.prefs.udp_port = Pref.uint("UDP port", 47000, "UDP port of the gateway")

-- Validation: returns nil, or the error code suffix and what broke (protocol.c's order).
local function u8(tvb, o) return tvb(o, 1):uint() end
local function u16(tvb, o) return tvb(o, 2):uint() end
local function u32(tvb, o) return tvb(o, 4):uint() end

local function check_body(tvb, typ, b, n)
	if typ == 2 then
		if n < 20 then return "BODY_LEN", "result body shorter than 20 bytes" end
		local k = u8(tvb, b + 3)
		if u8(tvb, b + 2) > 3 then return "BAD_STATUS", "result status " .. u8(tvb, b + 2) end
		if k > 16 then return "BAD_TOPK", "topk_count " .. k .. " > 16" end
		if n ~= 20 + 8 * k then return "BODY_LEN", "body " .. n .. " bytes for " .. k .. " top-k entries" end
		for j = 0, k - 1 do
			if u16(tvb, b + 22 + 8 * j) ~= 0 then return "RESERVED", "top-k entry " .. j .. " reserved" end
		end
	elseif typ == 3 then
		if n < 12 then return "BODY_LEN", "command body shorter than 12 bytes" end
		local kind, count = u8(tvb, b), u8(tvb, b + 1)
		if kind == 3 then
			if n ~= 12 then return "BODY_LEN", "move command of " .. n .. " bytes" end
			if count ~= 0 or u32(tvb, b + 8) ~= 0 then return "RESERVED", "move command reserved bytes" end
			if u32(tvb, b + 4) == 0 or u16(tvb, b + 2) == 0 then return "BAD_COMMAND", "move without address" end
		elseif kind == 1 then
			if n ~= 12 then return "BODY_LEN", "rate switch of " .. n .. " bytes" end
			if count ~= 0 then return "RESERVED", "rate switch count " .. count end
		elseif kind ~= 2 then
			return "BAD_COMMAND", "command kind " .. kind
		elseif count < 2 or count > 8 then
			return "BAD_COMMAND", "plan count " .. count
		elseif n ~= 12 + 2 * (count - 1) then
			return "BODY_LEN", "plan of " .. count .. " steps in " .. n .. " bytes"
		end
	elseif typ == 4 then
		if n < 16 then return "BODY_LEN", "hello body shorter than 16 bytes" end
		local ns = u16(tvb, b + 14)
		if ns > 64 then return "BAD_SETUPS", "n_setups " .. ns .. " > 64" end
		if n ~= 16 + 2 * ns then return "BODY_LEN", "body " .. n .. " bytes for " .. ns .. " setups" end
	elseif typ == 5 then
		if n ~= 16 and n ~= 20 then return "BODY_LEN", "hello-ack body of " .. n .. " bytes" end
		if n == 20 and u32(tvb, b + 16) == 0 then return "BODY_LEN", "extended hello-ack with max_frame_len 0" end
		local st = u8(tvb, b)
		if st > 4 then return "BAD_STATUS", "hello-ack status " .. st end
		if st == 4 then
			if u16(tvb, b + 14) ~= 0 then return "RESERVED", "redirect bytes 14-15" end
			if u32(tvb, b + 8) == 0 or u16(tvb, b + 12) == 0 then return "BAD_STATUS", "redirect without address" end
		end
		if u8(tvb, b + 1) ~= 0 then return "RESERVED", "hello-ack byte 1" end
		if st ~= 3 and u16(tvb, b + 6) ~= 0 then return "RESERVED", "retry_after_ms outside a busy ack" end
	elseif typ == 6 then
		if n ~= 32 then return "BODY_LEN", "report body of " .. n .. " bytes" end
	end
	return nil
end

local function validate(tvb)
	local len = tvb:len()
	if len < 5 then return "TRUNCATED", len .. " bytes" end
	if u32(tvb, 0) ~= MAGIC then return "BAD_MAGIC", string.format("magic 0x%08x", u32(tvb, 0)) end
	if u8(tvb, 4) ~= 1 then return "BAD_VERSION", "version " .. u8(tvb, 4) end
	if len < HDR_LEN then return "TRUNCATED", len .. " bytes, header needs 48" end
	local typ, hl, flags = u8(tvb, 5), u8(tvb, 6), u8(tvb, 7)
	if typ == 0 or typ > 6 then return "BAD_TYPE", "type " .. typ end
	if hl < HDR_LEN or hl % 4 ~= 0 then return "BAD_HDR_LEN", "hdr_len " .. hl end
	if hl > len then return "TRUNCATED", "hdr_len " .. hl .. " > " .. len .. " bytes" end
	local has_tag = flags % 2 == 1
	local rest = len - hl
	if has_tag and rest < TAG_LEN then return "TRUNCATED", "no room for the tag" end
	local body_len = rest - (has_tag and TAG_LEN or 0)
	local index, count, size = u16(tvb, 26), u16(tvb, 28), u16(tvb, 30)
	local frame_len = u32(tvb, 32)
	if typ == 1 then
		if count == 0 then return "FRAG_COUNT", "frag_count 0" end
		if index >= count then return "FRAG_INDEX", "frag_index " .. index .. " >= frag_count " .. count end
		if size == 0 then return "FRAG_SIZE", "frag_size 0" end
		if frame_len == 0 or math.ceil(frame_len / size) ~= count then
			return "FRAME_LEN", "frame_len " .. frame_len .. " is not " .. count .. " fragments of " .. size
		end
		local last = index == count - 1
		if last ~= has_tag then
			return "TAG_FLAG", last and "last fragment without tag" or "tag on a fragment that is not the last"
		end
		local want = last and frame_len - (count - 1) * size or size
		if body_len ~= want then
			return "PAYLOAD_LEN", "payload " .. body_len .. " bytes, index " .. index .. " needs " .. want
		end
		return nil
	end
	if not has_tag then return "TAG_FLAG", "message without tag" end
	if count ~= 1 then return "FRAG_COUNT", "frag_count " .. count .. " (must be 1)" end
	if index ~= 0 then return "FRAG_INDEX", "frag_index " .. index .. " (must be 0)" end
	if size ~= 0 then return "FRAG_SIZE", "frag_size " .. size .. " (must be 0)" end
	if frame_len ~= body_len then
		return "FRAME_LEN", "frame_len " .. frame_len .. " but body " .. body_len .. " bytes"
	end
	return check_body(tvb, typ, hl, body_len)
end

-- Adds a field when its bytes are in the datagram; returns the item or nil.
local function add(tree, field, tvb, o, n)
	if o + n > tvb:len() then return nil end
	return tree:add(field, tvb(o, n))
end

-- Reassembly state, rebuilt on every first pass (init).
local frames   -- "tenant:device:seq" -> frame being collected
local by_pkt   -- packet number -> { frame, index }

function rtci.init()
	frames, by_pkt = {}, {}
end

local function collect(tvb, pinfo, hl, body_len)
	local key = u32(tvb, 8) .. ":" .. u32(tvb, 12) .. ":" .. tostring(tvb(16, 8):uint64())
	local count, size, flen = u16(tvb, 28), u16(tvb, 30), u32(tvb, 32)
	local fr = frames[key]
	if fr == nil or fr.done or fr.count ~= count or fr.size ~= size or fr.len ~= flen then
		fr = { count = count, size = size, len = flen, got = 0, parts = {}, pkts = {} }
		frames[key] = fr
	end
	local index = u16(tvb, 26)
	local entry = { frame = fr, index = index }
	if fr.parts[index] then
		entry.dup = fr.pkts[index]
	else
		fr.parts[index] = tvb(hl, body_len):bytes()
		fr.pkts[index] = pinfo.number
		fr.got = fr.got + 1
		if fr.got == count then
			local all = ByteArray.new()
			for i = 0, count - 1 do all:append(fr.parts[i]) end
			fr.data, fr.parts, fr.done = all, nil, true
			fr.complete_in = pinfo.number
		end
	end
	by_pkt[pinfo.number] = entry
end

local function show_fragment(tvb, pinfo, tree, hl, body_len)
	local index, size = u16(tvb, 26), u16(tvb, 30)
	tree:add(f.payload, tvb(hl, body_len))
	tree:add(f.frag_offset, index * size):set_generated()
	if not pinfo.visited then collect(tvb, pinfo, hl, body_len) end
	local e = by_pkt[pinfo.number]
	if e == nil then return end
	local fr = e.frame
	if e.dup then
		tree:add(f.reasm_dup, e.dup):set_generated()
		tree:add_proto_expert_info(ef_dup, "fragment " .. index .. " already seen in " .. e.dup)
	elseif fr.complete_in then
		tree:add(f.reasm_in, fr.complete_in):set_generated()
	end
	if fr.complete_in == pinfo.number and not e.dup then
		local whole = fr.data:tvb("Reassembled RTCI frame")
		local sub = tree:add(f.reasm_len, fr.len):set_generated()
		for i = 0, fr.count - 1 do sub:add(f.reasm_frag, fr.pkts[i]):set_generated() end
		sub:add(f.reasm_data, whole())
		pinfo.cols.info:append(" [frame complete]")
	end
end

local function show_body(tvb, pinfo, tree, typ, b, n)
	local bt = tree:add(rtci, tvb(b, n), types[typ] or "body")
	if typ == 2 then
		add(bt, f.res_class, tvb, b, 2); add(bt, f.res_status, tvb, b + 2, 1)
		add(bt, f.res_topk, tvb, b + 3, 1); add(bt, f.res_score, tvb, b + 4, 4)
		add(bt, f.res_queue, tvb, b + 8, 4); add(bt, f.res_infer, tvb, b + 12, 4)
		add(bt, f.res_total, tvb, b + 16, 4)
		if n >= 4 then
			local k = math.min(u8(tvb, b + 3), 16)
			for j = 0, k - 1 do
				local o = b + 20 + 8 * j
				if o + 8 > b + n then break end
				local e = bt:add(rtci, tvb(o, 8), "top-k " .. j)
				e:add(f.topk_class, tvb(o, 2)); e:add(f.topk_reserved, tvb(o + 2, 2))
				e:add(f.topk_score, tvb(o + 4, 4))
			end
			local st = u8(tvb, b + 2)
			pinfo.cols.info:append(st == 0 and (" class " .. u16(tvb, b))
				or (" " .. (result_status[st] or "status " .. st)))
		end
	elseif typ == 3 then
		add(bt, f.cmd_kind, tvb, b, 1)
		local kind = n >= 1 and u8(tvb, b) or 0
		if kind == 3 then
			add(bt, f.cmd_reserved, tvb, b + 1, 1); add(bt, f.cmd_port, tvb, b + 2, 2)
			add(bt, f.cmd_ip, tvb, b + 4, 4); add(bt, f.cmd_reserved, tvb, b + 8, 4)
			if n >= 8 then
				pinfo.cols.info:append(" move to " .. tostring(tvb(b + 4, 4):ipv4()) .. ":" .. u16(tvb, b + 2))
			end
		else
			add(bt, f.cmd_count, tvb, b + 1, 1); add(bt, f.cmd_setup, tvb, b + 2, 2)
			add(bt, f.cmd_from, tvb, b + 4, 8)
			for o = b + 12, b + n - 2, 2 do bt:add(f.cmd_plan, tvb(o, 2)) end
			if n >= 12 then
				pinfo.cols.info:append(" " .. (cmd_kinds[kind] or "kind " .. kind) .. " to setup "
					.. u16(tvb, b + 2) .. " from frame " .. tostring(tvb(b + 4, 8):uint64()))
			end
		end
	elseif typ == 4 then
		add(bt, f.hello_model, tvb, b, 4); add(bt, f.hello_fps, tvb, b + 4, 4)
		add(bt, f.hello_deadline, tvb, b + 8, 4); add(bt, f.hello_frag, tvb, b + 12, 2)
		add(bt, f.hello_n, tvb, b + 14, 2)
		for o = b + 16, b + n - 2, 2 do bt:add(f.hello_setup, tvb(o, 2)) end
	elseif typ == 5 then
		add(bt, f.ack_status, tvb, b, 1); add(bt, f.ack_reserved, tvb, b + 1, 1)
		add(bt, f.ack_setup, tvb, b + 2, 2); add(bt, f.ack_frag, tvb, b + 4, 2)
		add(bt, f.ack_retry, tvb, b + 6, 2)
		local st = n >= 1 and u8(tvb, b) or 0
		if st == 4 then
			add(bt, f.ack_ip, tvb, b + 8, 4); add(bt, f.ack_port, tvb, b + 12, 2)
			add(bt, f.cmd_reserved, tvb, b + 14, 2)
		else
			add(bt, f.ack_min_seq, tvb, b + 8, 8)
		end
		if n >= 20 then add(bt, f.ack_max_frame, tvb, b + 16, 4) end
		if n >= 1 then pinfo.cols.info:append(" " .. (ack_status[st] or "status " .. st)) end
	elseif typ == 6 then
		add(bt, f.rep_bytes, tvb, b, 8); add(bt, f.rep_frames, tvb, b + 8, 4)
		add(bt, f.rep_dropped, tvb, b + 12, 4); add(bt, f.rep_rate, tvb, b + 16, 8)
		add(bt, f.rep_backlog, tvb, b + 24, 4); add(bt, f.rep_interval, tvb, b + 28, 4)
	end
end

function rtci.dissector(tvb, pinfo, root)
	local len = tvb:len()
	pinfo.cols.protocol = "RTCI"
	local tree = root:add(rtci, tvb())
	local code, why = validate(tvb)

	add(tree, f.magic, tvb, 0, 4); add(tree, f.version, tvb, 4, 1)
	if len >= HDR_LEN then
		local typ = u8(tvb, 5)
		tree:add(f.type, tvb(5, 1)); tree:add(f.hdr_len, tvb(6, 1))
		local ft = tree:add(f.flags, tvb(7, 1)); ft:add(f.flag_tag, tvb(7, 1))
		if typ == 4 then ft:add(f.flag_ack_ext, tvb(7, 1)) end
		tree:add(f.tenant, tvb(8, 4)); tree:add(f.device, tvb(12, 4))
		tree:add(f.seq, tvb(16, 8)); tree:add(f.setup, tvb(24, 2))
		tree:add(f.frag_index, tvb(26, 2)); tree:add(f.frag_count, tvb(28, 2))
		tree:add(f.frag_size, tvb(30, 2)); tree:add(f.frame_len, tvb(32, 4))
		tree:add(f.backlog, tvb(36, 4)); tree:add(f.capture_us, tvb(40, 8))
		pinfo.cols.info = string.format("%s tenant %u device %u seq %s",
			types[typ] or ("type " .. typ), u32(tvb, 8), u32(tvb, 12), tostring(tvb(16, 8):uint64()))
		if typ == 1 then
			pinfo.cols.info:append(string.format(" [%u/%u]", u16(tvb, 26), u16(tvb, 28)))
		end
		local hl = u8(tvb, 6)
		-- the body is shown whenever the header itself holds (a body rule may still break)
		local hdr_ok = code == nil or not (code == "BAD_MAGIC" or code == "BAD_VERSION"
			or code == "BAD_TYPE" or code == "BAD_HDR_LEN" or code == "TRUNCATED")
		if hdr_ok then
			if hl > HDR_LEN then tree:add(f.hdr_extra, tvb(HDR_LEN, hl - HDR_LEN)) end
			local has_tag = u8(tvb, 7) % 2 == 1
			local body_len = len - hl - (has_tag and TAG_LEN or 0)
			if typ == 1 and code == nil then
				show_fragment(tvb, pinfo, tree, hl, body_len)
			elseif typ == 1 then
				if body_len > 0 then tree:add(f.payload, tvb(hl, body_len)) end
			elseif body_len > 0 then
				show_body(tvb, pinfo, tree, typ, hl, body_len)
			end
			if has_tag then tree:add(f.tag, tvb(len - TAG_LEN, TAG_LEN)) end
		end
	else
		pinfo.cols.info = "RTCI"
	end
	if code ~= nil then
		tree:add_proto_expert_info(ef_malformed, errors[code] .. " (RTCI_ERR_PROTO_" .. code .. "): " .. why)
		pinfo.cols.info:append(" [malformed: " .. errors[code] .. "]")
	end
	return len
end

local function heuristic(tvb, pinfo, root)
	if tvb:len() < 5 or u32(tvb, 0) ~= MAGIC then return false end
	rtci.dissector(tvb, pinfo, root)
	return true
end

local udp_port = DissectorTable.get("udp.port")
local registered = rtci.prefs.udp_port
udp_port:add(registered, rtci)
rtci:register_heuristic("udp", heuristic)

function rtci.prefs_changed()
	if registered ~= rtci.prefs.udp_port then
		udp_port:remove(registered, rtci)
		registered = rtci.prefs.udp_port
		udp_port:add(registered, rtci)
	end
end
