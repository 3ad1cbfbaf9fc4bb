"""Helpers of bench/e2e: the setup table, per-run rows, CSV, the simulator comparison, tables."""
import csv
import glob
import json
import math
import os
import re
import struct
import sys
from collections import Counter, defaultdict

CODEC_HEADER = 28  # RTCI_CODEC_HEADER_SIZE


def model_table(path):
    """The controller's table as rtci-gateway builds it (gateway/control_glue.c)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
    rt = json.loads(hdr['__metadata__']['rtci'])
    stem = rt['geometry']['stem']['out']
    out, measured = [], True
    for s in rt['setups']:
        bits = int(round(math.log2(s['L'] + 1)))
        acc, pay = s.get('accuracy'), s.get('payload_bytes')
        if acc is None:
            measured = False
            acc = 0.5 + 0.49 * math.sqrt(s['c'] * bits / (16.0 * stem))
        if pay is None or pay <= 0:
            pay = s['raw_bytes'] + CODEC_HEADER
        out.append({'id': s['id'], 'c': s['c'], 'L': s['L'], 'accuracy': acc,
                    'payload_bytes': pay})
    return rt['geometry']['name'], out, measured


def cmd_table(model, out):
    name, setups, measured = model_table(model)
    prov = ('measured accuracies and payloads of ' + model if measured else
            'proxy of rtci-gateway for a model without figures: payload = raw + codec header, '
            'accuracy = 0.5 + 0.49 sqrt(c bits / (16 C))')
    with open(out, 'w') as f:
        json.dump({'format': 'rtci-setups', 'version': 1, 'name': name, 'provenance': prov,
                   'setups': setups}, f, indent=1)
    print('model: %s (%s)' % (model, 'trained: measured setup table' if measured else
                             'NO measured figures: random weights, label accuracies are '
                             'meaningless; the controller and rtci-sim use the proxy table'))


def load_table(outdir):
    with open(os.path.join(outdir, 'setups.json')) as f:
        t = json.load(f)
    return {s['id']: s for s in t['setups']}, 'proxy' in t['provenance']


def kv(path):
    d = {}
    if os.path.exists(path):
        for tok in open(path).read().split():
            k, _, v = tok.partition('=')
            d[k] = float(v or 0)
    return d


def cmd_run(d, name, n, dur, policy, fixed):
    txt = open(os.path.join(d, 'fleet.out')).read()
    r = {'name': name, 'devices': int(n), 'duration_s': float(dur), 'policy': policy,
         'fixed_setup': int(fixed) if policy == 'fixed' else ''}

    def grab(rx, key, conv=float):
        m = re.search(rx, txt)
        r[key] = conv(m.group(1)) if m else float('nan')
    grab(r'frames: captured (\d+)', 'captured', int)
    grab(r'frames: captured \d+, sent (\d+)', 'sent', int)
    grab(r'skipped: late (\d+)', 'skipped_late', int)
    grab(r'queue full (\d+)', 'skipped_queue_full', int)
    grab(r'no session (\d+)', 'skipped_no_session', int)
    grab(r'deadline-hit rate ([\d.]+)', 'hit_rate')
    grab(r'accuracy: real-time ([\d.]+)', 'rt_accuracy')
    grab(r'delivered ([\d.]+) ', 'delivered_accuracy')
    grab(r'p50 ([\d.]+)', 'p50_ms')
    grab(r'p99 ([\d.]+)', 'p99_ms')
    grab(r'devices \((\d+) in session\)', 'in_session', int)
    grab(r'cpu: ([\d.]+) s', 'fleet_cpu_s')
    res = kv(os.path.join(d, 'resources.txt'))
    wall = res.get('wall_s', 0) or float('nan')
    r['gw_cpu_cores'] = res.get('gw_cpu_s', 0) / wall
    r['gw_cpu_per_1000'] = r['gw_cpu_cores'] * 1000.0 / int(n)
    r['gw_rss_mb'] = res.get('gw_rss_kb', 0) / 1024
    r['gw_peak_rss_mb'] = res.get('gw_hwm_kb', 0) / 1024
    r['fleet_peak_rss_mb'] = res.get('fleet_hwm_kb', 0) / 1024
    busy = defaultdict(list)
    bp = os.path.join(d, 'busy.txt')
    if os.path.exists(bp):
        for line in open(bp):
            m = re.match(r'rtci_lcore_busy_ratio\{(.*)\}\s+(\S+)', line)
            if m:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
                busy[labels.get('role', '?')].append(float(m.group(2)))
    for role in ('rx', 'worker'):
        v = busy.get(role, [])
        r['busy_' + role] = sum(v) / len(v) if v else float('nan')
    loads = [float(x) for x in open(os.path.join(d, 'load.txt'))] if os.path.exists(
        os.path.join(d, 'load.txt')) else []
    r['load_mean'] = sum(loads) / len(loads) if loads else float('nan')
    # table-weighted real-time accuracy: in-time frames credited with their setup's table
    # accuracy (the hit rate of a device is taken as the same for all of its setups)
    tab, _ = load_table(os.path.dirname(os.path.dirname(os.path.abspath(d))))
    credit, cap = 0.0, 0
    traces = Counter()
    with open(os.path.join(d, 'devices.csv')) as f:
        for row in csv.DictReader(f):
            cap += int(row['captured'])
            traces[os.path.basename(row['trace'])] += 1
            sent = [tuple(map(int, x.split(':'))) for x in row['setups'].split(';') if x]
            ns = sum(k for _, k in sent)
            if ns:
                macc = sum(k * tab[s]['accuracy'] for s, k in sent if s in tab) / ns
                credit += int(row['in_time']) * macc
    r['table_rt_accuracy'] = credit / cap if cap else float('nan')
    r['traces'] = dict(traces)
    r.update(admission_figures(os.path.join(d, 'devices.csv'), float(dur)))
    prom = prom_values(os.path.join(d, 'final.prom'))
    r['gw_capacity_fps'] = sum(v for k, v in prom.items() if k.startswith('rtci_capacity_fps'))
    r['adm_capacity_fps'] = prom.get('rtci_admission_capacity_fps', float('nan'))
    with open(os.path.join(d, 'row.json'), 'w') as f:
        json.dump(r, f)


def prom_values(path):
    """Series -> value of a Prometheus text file (comments skipped)."""
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if line.startswith('#') or not line.strip():
                continue
            k, _, v = line.rstrip().rpartition(' ')
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def admission_figures(path, dur):
    """Per run, from rtci-fleet's per-device CSV: in-time frames/s, the deadline-hit rate of
    frames captured while their device was admitted, devices admitted / told busy / still waiting,
    and how fast a refused device heard so (first hello -> first answer)."""
    hits = adm_cap = admitted = busy = waiting = 0
    answers = []
    with open(path) as f:
        for row in csv.DictReader(f):
            c = int(row['captured']) - int(row['skipped_no_session'])
            hits += int(row['in_time'])
            adm_cap += max(c, 0)
            admitted += c > 0
            b = int(row.get('busy_answers') or 0)
            busy += b > 0
            waiting += row['state'] == 'busy'
            fa = float(row.get('first_answer_ms') or -1)
            if b > 0 and fa >= 0:
                answers.append(fa)
    answers.sort()
    q = lambda p: answers[min(len(answers) - 1, int(p * len(answers)))] if answers else float('nan')
    return {'in_time_fps': hits / dur if dur else float('nan'),
            'admitted_hit_rate': hits / adm_cap if adm_cap else float('nan'),
            'devices_admitted': admitted, 'devices_busy': busy, 'devices_waiting_end': waiting,
            'busy_answer_p50_ms': q(0.5), 'busy_answer_max_ms': answers[-1] if answers else
            float('nan')}


COLS = ['name', 'devices', 'duration_s', 'policy', 'fixed_setup', 'captured', 'sent',
        'skipped_late', 'skipped_queue_full', 'skipped_no_session', 'in_session', 'hit_rate',
        'rt_accuracy', 'table_rt_accuracy', 'delivered_accuracy', 'p50_ms', 'p99_ms',
        'gw_cpu_cores', 'gw_cpu_per_1000', 'busy_rx', 'busy_worker', 'gw_rss_mb',
        'gw_peak_rss_mb', 'fleet_peak_rss_mb', 'fleet_cpu_s', 'load_mean', 'in_time_fps',
        'admitted_hit_rate', 'devices_admitted', 'devices_busy', 'devices_waiting_end',
        'busy_answer_p50_ms', 'busy_answer_max_ms', 'gw_capacity_fps', 'adm_capacity_fps']


def rows(outdir, kind):
    out = []
    for p in glob.glob(os.path.join(outdir, 'runs', kind + '-*', 'row.json')):
        out.append(json.load(open(p)))
    out.sort(key=lambda r: (r['devices'], r['name']))
    return out


def key(r):
    return (r['devices'], r['policy'], r['fixed_setup'])


def median(v):
    v = sorted(x for x in v if x == x)
    if not v:
        return float('nan')
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def med_rows(outdir, kind):
    """One row per (devices, policy, fixed setup): the median of each figure over repeats."""
    groups = defaultdict(list)
    for r in rows(outdir, kind):
        groups[key(r)].append(r)
    out = []
    for k in sorted(groups, key=lambda k: (k[0], k[1], str(k[2]))):
        g = groups[k]
        m = dict(g[0])
        m['repeats'] = len(g)
        for c in COLS + ['gw_cpu_cores']:
            if isinstance(g[0].get(c), (int, float)) and c not in ('devices', 'fixed_setup'):
                m[c] = median([float(r[c]) for r in g])
        m['traces'] = g[0]['traces']
        m['runs'] = g
        out.append(m)
    return out


def cmd_csv(outdir, kind):
    w = csv.writer(sys.stdout)
    w.writerow(COLS)
    for r in rows(outdir, kind):
        w.writerow([('%.6g' % r[c]) if isinstance(r[c], float) else r[c] for c in COLS])


def cmd_bracket(outdir, target, sizes):
    by = {r['devices']: r for r in med_rows(outdir, 'scale')}
    lo, hi = 0, 0
    for n in [int(x) for x in sizes.split(',')]:
        if n not in by:
            continue
        if by[n]['hit_rate'] >= float(target):
            lo, hi = n, -1
        else:
            hi = n
            break
    print(lo, hi)


def cmd_held(d, target):
    r = json.load(open(os.path.join(d, 'row.json')))
    sys.exit(0 if r['hit_rate'] >= float(target) else 1)


def cmd_topfixed(path, k):
    with open(path) as f:
        rs = [r for r in csv.DictReader(f) if r['policy'].startswith('fixed:')]
    rs.sort(key=lambda r: -float(r['rt_accuracy']))
    print(' '.join(r['policy'].split(':')[1] for r in rs[:int(k)]))


def sim_rows(outdir):
    """rtci-sim per policy: per-trace means weighted by the fleet's devices per trace."""
    per = defaultdict(lambda: defaultdict(list))
    with open(os.path.join(outdir, 'sim-runs.csv')) as f:
        for r in csv.DictReader(f):
            per[r['policy']][r['trace']].append((float(r['rt_accuracy']), float(r['hit_rate'])))
    out = []
    for r in rows(outdir, 'policy'):
        pol = r['policy'] if r['policy'] != 'fixed' else 'fixed:%d' % r['fixed_setup']
        tr = per.get(pol, {})
        w = {t: c for t, c in r['traces'].items() if t in tr}
        wsum = sum(w.values())
        if not wsum:
            continue
        srt = sum(c * sum(a for a, _ in tr[t]) / len(tr[t]) for t, c in w.items()) / wsum
        shit = sum(c * sum(h for _, h in tr[t]) / len(tr[t]) for t, c in w.items()) / wsum
        out.append({'policy': pol, 'live_rt_accuracy': r['rt_accuracy'],
                    'live_table_rt_accuracy': r['table_rt_accuracy'],
                    'live_hit_rate': r['hit_rate'], 'sim_rt_accuracy': srt, 'sim_hit_rate': shit,
                    'devices_matched': wsum, 'devices': r['devices'], 'name': r['name']})
    return out


def sim_med(outdir):
    g = defaultdict(list)
    for r in sim_rows(outdir):
        g[r['policy']].append(r)
    out = []
    for pol, rs in g.items():
        m = dict(rs[0])
        for c in ('live_rt_accuracy', 'live_table_rt_accuracy', 'live_hit_rate',
                  'sim_rt_accuracy', 'sim_hit_rate'):
            m[c] = median([x[c] for x in rs])
        m['repeats'] = len(rs)
        out.append(m)
    order = {'mpc': 0, 'rate': 1}
    out.sort(key=lambda r: (order.get(r['policy'], 2), r['policy']))
    return out


def cmd_sim(outdir):
    rs = sim_rows(outdir)
    w = csv.writer(sys.stdout)
    cols = ['name', 'policy', 'devices', 'devices_matched', 'live_rt_accuracy', 'live_table_rt_accuracy',
            'live_hit_rate', 'sim_rt_accuracy', 'sim_hit_rate']
    w.writerow(cols)
    for r in rs:
        w.writerow([('%.6g' % r[c]) if isinstance(r[c], float) else r[c] for c in cols])


def cmd_summary(outdir):
    tab, proxy = load_table(outdir)
    print(open(os.path.join(outdir, 'model.txt')).read().strip())
    sc = med_rows(outdir, 'scale')
    if sc:
        print('\n== scale: mpc, one gateway (rx lcore + 1 worker), fleet in the other namespace; '
              'medians of %d run(s); uplinks: %s ==' % (
                  sc[0]['repeats'], 'unlimited' if '' in sc[0]['traces'] else 'traces'))
        print('%7s %6s %9s %7s %8s %9s %8s %8s %7s %7s %8s %8s %8s %5s' % (
            'devices', 'dur_s', 'frames', 'hit', 'rt-acc', 'tab-rtacc', 'p99_ms', 'gw_cores',
            'cpu/1k', 'busy_rx', 'busy_wk', 'gw_MB', 'fleet_MB', 'load'))
        for r in sc:
            print('%7d %6.0f %9d %7.4f %8.4f %9.4f %8.1f %8.2f %7.3f %7.3f %8.3f %8.1f %8.1f %5.1f'
                  % (r['devices'], r['duration_s'], r['captured'], r['hit_rate'],
                     r['rt_accuracy'], r['table_rt_accuracy'], r['p99_ms'], r['gw_cpu_cores'],
                     r['gw_cpu_per_1000'], r['busy_rx'], r['busy_worker'], r['gw_peak_rss_mb'],
                     r['fleet_peak_rss_mb'], r['load_mean']))
        print('gw_cores: gateway utime+stime / wall (its lcores poll while there is work and sleep '
              '50 us when idle, so this is work plus wake-ups);'
              ' cpu/1k = gw_cores per 1,000 devices; busy_*: mean share of time the rx lcore / '
              'worker spent on packets / batches (rtci_lcore_busy_ratio); MB: peak RSS')
    se = rows(outdir, 'search')
    bp = os.path.join(outdir, 'search_bounds.txt')
    if se or os.path.exists(bp):
        print('\n== search: largest fleet with deadline hits >= target ==')
        for r in se:
            print('  %6d devices, %3.0f s: hit %.4f  p99 %.1f ms  load %.1f' % (
                r['devices'], r['duration_s'], r['hit_rate'], r['p99_ms'], r['load_mean']))
        if os.path.exists(bp):
            lo, hi = open(bp).read().split()
            print('  largest fleet holding the target: %s devices (next tried, failing: %s)' % (
                lo, 'none' if hi == '-1' else hi))
    po = med_rows(outdir, 'policy')
    if po:
        print('\n== policies: same fleet, seed, traces, offsets; medians of %d run(s) ==' %
              po[0]['repeats'])
        acc_col = 'table_rt_accuracy' if proxy else 'rt_accuracy'
        print('%-10s %7s %8s %9s %8s %8s' % ('policy', 'hit', 'rt-acc', 'tab-rtacc', 'p99_ms',
                                             'load'))
        for r in po:
            pol = r['policy'] if r['policy'] != 'fixed' else 'fixed:%d' % r['fixed_setup']
            print('%-10s %7.4f %8.4f %9.4f %8.1f %8.1f' % (pol, r['hit_rate'], r['rt_accuracy'],
                                                          r['table_rt_accuracy'], r['p99_ms'],
                                                          r['load_mean']))
        fx = [r for r in po if r['policy'] == 'fixed']
        m = [r for r in po if r['policy'] == 'mpc']
        ra = [r for r in po if r['policy'] == 'rate']
        if fx and m and ra:
            bf = max(fx, key=lambda r: r[acc_col])
            print('compared on %s%s: mpc %.4f, best fixed (setup %d) %.4f -> ratio %.3f; '
                  'rate %.4f -> ratio %.3f' % (
                      acc_col, ' (proxy table: label accuracy is that of random weights)'
                      if proxy else '', m[0][acc_col], bf['fixed_setup'], bf[acc_col],
                      m[0][acc_col] / bf[acc_col] if bf[acc_col] else float('nan'),
                      ra[0][acc_col],
                      m[0][acc_col] / ra[0][acc_col] if ra[0][acc_col] else float('nan')))
    print_overload(outdir)
    print_tenants(outdir)
    if os.path.exists(os.path.join(outdir, 'sim-runs.csv')):
        rs = sim_med(outdir)
        print('\n== live vs rtci-sim (same fps, deadline, duration, table; rtci-sim runs each '
              'device of the fleet on its trace from its start offset; per-trace means weighted '
              'by the fleet\'s devices per trace) ==')
        live = 'live_table_rt_accuracy' if proxy else 'live_rt_accuracy'
        ratio = lambda a, b: a / b if b else float('nan')
        print('%-10s %9s %9s %9s %7s %7s %9s %9s %7s' % (
            'policy', 'live-rta', 'live-tab', 'sim-rta', 'ratio', 'tab/sim', 'live-hit',
            'sim-hit', 'ratio'))
        for r in rs:
            print('%-10s %9.4f %9.4f %9.4f %7.3f %7.3f %9.4f %9.4f %7.3f' % (
                r['policy'], r[live], r['live_table_rt_accuracy'], r['sim_rt_accuracy'],
                ratio(r[live], r['sim_rt_accuracy']),
                ratio(r['live_table_rt_accuracy'], r['sim_rt_accuracy']),
                r['live_hit_rate'], r['sim_hit_rate'],
                ratio(r['live_hit_rate'], r['sim_hit_rate'])))
        print('live-rta: %s; live-tab: table-weighted (in-time frames x table accuracy of their '
              'setup), what rtci-sim credits' % (
                  'table-weighted' if proxy else 'correct and in time / captured (labels)'))


def cmd_capfps(d):
    """The gateway's capacity in frames/s from its cost model, as its final metrics give it."""
    print('%.0f' % json.load(open(os.path.join(d, 'row.json')))['gw_capacity_fps'])


def tenant_fleet(d, tag):
    r = admission_figures(os.path.join(d, 'devices-%s.csv' % tag), 1.0)
    with open(os.path.join(d, 'devices-%s.csv' % tag)) as f:
        rows_ = list(csv.DictReader(f))
    r['devices'] = len(rows_)
    r['captured'] = sum(int(x['captured']) for x in rows_)
    return r


def cmd_tenants(d):
    out = {'a': tenant_fleet(d, 'a'), 'b': tenant_fleet(d, 'b')}
    prom = prom_values(os.path.join(d, 'final.prom'))
    for t, tid in (('a', '1'), ('b', '2')):
        out[t]['preempted'] = prom.get('rtci_admission_preempted_total{tenant="%s"}' % tid, 0)
        out[t]['refused_busy'] = prom.get(
            'rtci_hellos_refused_total{tenant="%s",reason="busy"}' % tid, 0)
    with open(os.path.join(d, 'tenants.json'), 'w') as f:
        json.dump(out, f)


def print_tenants(outdir):
    p = os.path.join(outdir, 'runs', 'tenants', 'tenants.json')
    if not os.path.exists(p):
        return
    t = json.load(open(p))
    print('\n== two tenants of weight 1: A floods with devices far beyond the capacity, B brings '
          'half the capacity later ==')
    print('%-7s %7s %8s %6s %7s %9s %9s %12s' % ('tenant', 'devices', 'admitted', 'busy',
                                                'waiting', 'adm_hit', 'preempted', 'busy_hellos'))
    for k, name in (('a', 'A'), ('b', 'B')):
        r = t[k]
        print('%-7s %7d %8d %6d %7d %9.4f %9.0f %12.0f' % (
            name, r['devices'], r['devices_admitted'], r['devices_busy'],
            r['devices_waiting_end'], r['admitted_hit_rate'], r['preempted'], r['refused_busy']))


def overload_rows(outdir, adm):
    """Overload runs of one admission setting: (level, median row) sorted by level."""
    g = defaultdict(list)
    for p in glob.glob(os.path.join(outdir, 'runs', 'overload-%s-*' % adm, 'row.json')):
        r = json.load(open(p))
        g[float(r['name'].split('-')[2])].append(r)
    out = []
    for lvl in sorted(g):
        m = dict(g[lvl][0])
        for c in COLS:
            if isinstance(m.get(c), (int, float)) and c != 'devices':
                m[c] = median([float(r[c]) for r in g[lvl]])
        m['repeats'] = len(g[lvl])
        out.append((lvl, m))
    return out


def print_overload(outdir):
    cal = os.path.join(outdir, 'runs', 'overload-calibrate', 'row.json')
    if not os.path.exists(cal):
        return
    c = json.load(open(cal))
    print('\n== overload: unlimited uplinks, devices at multiples of the capacity the gateway '
          'measured (%.0f frames/s: %d devices at %.0f fps) ==' % (
              c['gw_capacity_fps'], round(c['gw_capacity_fps'] / (c['captured'] / c['devices'] /
                                                                  c['duration_s'])),
              c['captured'] / c['devices'] / c['duration_s']))
    for adm in ('off', 'on'):
        rs = overload_rows(outdir, adm)
        if not rs:
            continue
        base = dict(rs).get(1.0, {}).get('in_time_fps', float('nan'))
        print('admission %s (medians of %d run(s)):' % (adm, rs[0][1]['repeats']))
        if adm == 'off':
            print('%6s %7s %9s %9s %8s %7s %8s %7s %7s' % (
                'load', 'devices', 'offered/s', 'intime/s', 'vs_1x', 'hit', 'p99_ms', 'busy_rx',
                'busy_wk'))
            for lvl, r in rs:
                print('%5.1fx %7d %9.0f %9.0f %8.3f %7.4f %8.1f %7.3f %7.3f' % (
                    lvl, r['devices'], r['captured'] / r['duration_s'], r['in_time_fps'],
                    r['in_time_fps'] / base if base == base and base else float('nan'),
                    r['hit_rate'], r['p99_ms'], r['busy_rx'], r['busy_worker']))
        else:
            print('%6s %7s %8s %6s %7s %9s %9s %8s %10s %10s' % (
                'load', 'devices', 'admitted', 'busy', 'waiting', 'adm_hit', 'intime/s', 'p99_ms',
                'busy_p50ms', 'busy_maxms'))
            for lvl, r in rs:
                print('%5.1fx %7d %8d %6d %7d %9.4f %9.0f %8.1f %10.2f %10.2f' % (
                    lvl, r['devices'], r['devices_admitted'], r['devices_busy'],
                    r['devices_waiting_end'], r['admitted_hit_rate'], r['in_time_fps'],
                    r['p99_ms'], r['busy_answer_p50_ms'], r['busy_answer_max_ms']))
    print('intime/s: frames answered within their deadline per second; vs_1x: that over the 1x '
          'run; adm_hit: deadline hits of frames captured while their device was admitted; '
          'busy: devices told "busy" at least once; waiting: still waiting at the end; busy_*ms: '
          'latest hello -> first answer (any status) of the devices told busy: the round trip of the hello answered')


def main():
    a = sys.argv[1:]
    cmds = {'table': cmd_table, 'run': cmd_run, 'csv': cmd_csv, 'bracket': cmd_bracket,
            'held': cmd_held, 'topfixed': cmd_topfixed, 'sim': cmd_sim, 'summary': cmd_summary,
            'capfps': cmd_capfps, 'tenants': cmd_tenants}
    if not a or a[0] not in cmds:
        sys.exit('usage: e2e_report.py ' + '|'.join(cmds) + ' ARGS')
    cmds[a[0]](*a[1:])


if __name__ == '__main__':
    main()
