/* Big-endian, alignment-free loads and stores for the wire formats (internal). */
#ifndef RTCI_DATAPLANE_WIRE_H
#define RTCI_DATAPLANE_WIRE_H

#include <stdint.h>
#include <string.h>

static inline uint16_t rtci_ld16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rtci_ld32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t rtci_ld64(const uint8_t *p)
{
	return ((uint64_t)rtci_ld32(p) << 32) | rtci_ld32(p + 4);
}
static inline void rtci_st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void rtci_st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void rtci_st64(uint8_t *p, uint64_t v)
{
	rtci_st32(p, (uint32_t)(v >> 32));
	rtci_st32(p + 4, (uint32_t)v);
}
static inline float rtci_ldf32(const uint8_t *p)
{
	uint32_t u = rtci_ld32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}
static inline void rtci_stf32(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	rtci_st32(p, u);
}

#endif
