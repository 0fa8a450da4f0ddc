/* hwsim's SIMD helper routines: the v128 instructions compiled code does not expand in place.
 *
 * Built once (python -m hwsim.compiler.isa.riscv64.simdlib) into position-independent RV64IMAFD code that
 * the compiler appends to every module that uses SIMD; compiled code calls a routine with the RISC-V
 * calling convention: a v128 is a struct of two 64-bit halves (two integer registers, low half first),
 * i32/i64 in integer registers, f32/f64 in float registers, results in a0/a1 or fa0.
 * One routine per WebAssembly instruction, named after it ('.' becomes '_').  Float lanes follow wasm:
 * RV64's F/D arithmetic already returns the canonical NaN; min/max, rounding and conversions are written
 * out here.  Relaxed SIMD follows the specification's deterministic profile.
 */
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef short i16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;

typedef struct { u64 lo, hi; } v128;
typedef union {
    v128 v;
    u8 u8[16]; i8 i8[16]; u16 u16[8]; i16 i16[8]; u32 u32[4]; i32 i32[4]; u64 u64[2]; i64 i64[2];
    float f32[4]; double f64[2];
} L;

#define EXPORT __attribute__((used, noinline, visibility("default")))
#define F32_CANON 0x7fc00000u
#define F64_CANON 0x7ff8000000000000ull

static inline u32 fbits(float f) { union { float f; u32 u; } x; x.f = f; return x.u; }
static inline float bitsf(u32 u) { union { float f; u32 u; } x; x.u = u; return x.f; }
static inline u64 dbits(double f) { union { double f; u64 u; } x; x.f = f; return x.u; }
static inline double bitsd(u64 u) { union { double f; u64 u; } x; x.u = u; return x.f; }

/* ---- splat, lanes ---- */
EXPORT v128 i8x16_splat(u32 x) { u64 b = (u8)x * 0x0101010101010101ull; v128 r = {b, b}; return r; }
EXPORT v128 i16x8_splat(u32 x) { u64 b = (u16)x * 0x0001000100010001ull; v128 r = {b, b}; return r; }
EXPORT v128 i32x4_splat(u32 x) { u64 b = (u64)x * 0x0000000100000001ull; v128 r = {b, b}; return r; }
EXPORT v128 i64x2_splat(u64 x) { v128 r = {x, x}; return r; }
EXPORT v128 f32x4_splat(float f) { return i32x4_splat(fbits(f)); }
EXPORT v128 f64x2_splat(double f) { return i64x2_splat(dbits(f)); }

EXPORT i32 i8x16_extract_lane_s(v128 a, u64 i) { L x; x.v = a; return x.i8[i & 15]; }
EXPORT i32 i8x16_extract_lane_u(v128 a, u64 i) { L x; x.v = a; return x.u8[i & 15]; }
EXPORT i32 i16x8_extract_lane_s(v128 a, u64 i) { L x; x.v = a; return x.i16[i & 7]; }
EXPORT i32 i16x8_extract_lane_u(v128 a, u64 i) { L x; x.v = a; return x.u16[i & 7]; }
EXPORT i32 i32x4_extract_lane(v128 a, u64 i) { L x; x.v = a; return x.i32[i & 3]; }
EXPORT u64 i64x2_extract_lane(v128 a, u64 i) { L x; x.v = a; return x.u64[i & 1]; }
EXPORT float f32x4_extract_lane(v128 a, u64 i) { L x; x.v = a; return bitsf(x.u32[i & 3]); }
EXPORT double f64x2_extract_lane(v128 a, u64 i) { L x; x.v = a; return bitsd(x.u64[i & 1]); }
EXPORT v128 i8x16_replace_lane(v128 a, u32 v, u64 i) { L x; x.v = a; x.u8[i & 15] = (u8)v; return x.v; }
EXPORT v128 i16x8_replace_lane(v128 a, u32 v, u64 i) { L x; x.v = a; x.u16[i & 7] = (u16)v; return x.v; }
EXPORT v128 i32x4_replace_lane(v128 a, u32 v, u64 i) { L x; x.v = a; x.u32[i & 3] = v; return x.v; }
EXPORT v128 i64x2_replace_lane(v128 a, u64 v, u64 i) { L x; x.v = a; x.u64[i & 1] = v; return x.v; }
EXPORT v128 f32x4_replace_lane(v128 a, float v, u64 i) { L x; x.v = a; x.u32[i & 3] = fbits(v); return x.v; }
EXPORT v128 f64x2_replace_lane(v128 a, double v, u64 i) { L x; x.v = a; x.u64[i & 1] = dbits(v); return x.v; }

/* ---- loads that extend ---- */
#define LOAD_EXT(name, NT, N, WT, from, to)                                              \
    EXPORT v128 name(u64 bits) { L s, r; s.v.lo = bits; s.v.hi = 0;                       \
        for (int i = 0; i < N; i++) r.to[i] = (WT)(NT)s.from[i]; return r.v; }
LOAD_EXT(v128_load8x8_s, i8, 8, i16, i8, i16)
LOAD_EXT(v128_load8x8_u, u8, 8, u16, u8, u16)
LOAD_EXT(v128_load16x4_s, i16, 4, i32, i16, i32)
LOAD_EXT(v128_load16x4_u, u16, 4, u32, u16, u32)
LOAD_EXT(v128_load32x2_s, i32, 2, i64, i32, i64)
LOAD_EXT(v128_load32x2_u, u32, 2, u64, u32, u64)

/* ---- shuffles ---- */
EXPORT v128 i8x16_swizzle(v128 a, v128 s) {
    L x, i, r; x.v = a; i.v = s;
    for (int k = 0; k < 16; k++) r.u8[k] = i.u8[k] < 16 ? x.u8[i.u8[k]] : 0;
    return r.v;
}
EXPORT v128 i8x16_relaxed_swizzle(v128 a, v128 s) { return i8x16_swizzle(a, s); }
EXPORT v128 i8x16_shuffle(v128 a, v128 b, u64 lo, u64 hi) {
    u8 both[32]; L x, y, idx, r; x.v = a; y.v = b; idx.v.lo = lo; idx.v.hi = hi;
    for (int k = 0; k < 16; k++) { both[k] = x.u8[k]; both[16 + k] = y.u8[k]; }
    for (int k = 0; k < 16; k++) r.u8[k] = both[idx.u8[k] & 31];
    return r.v;
}

/* ---- bitwise ---- */
EXPORT v128 v128_not(v128 a) { v128 r = {~a.lo, ~a.hi}; return r; }
EXPORT v128 v128_and(v128 a, v128 b) { v128 r = {a.lo & b.lo, a.hi & b.hi}; return r; }
EXPORT v128 v128_andnot(v128 a, v128 b) { v128 r = {a.lo & ~b.lo, a.hi & ~b.hi}; return r; }
EXPORT v128 v128_or(v128 a, v128 b) { v128 r = {a.lo | b.lo, a.hi | b.hi}; return r; }
EXPORT v128 v128_xor(v128 a, v128 b) { v128 r = {a.lo ^ b.lo, a.hi ^ b.hi}; return r; }
EXPORT v128 v128_bitselect(v128 a, v128 b, v128 c) {
    v128 r = {(a.lo & c.lo) | (b.lo & ~c.lo), (a.hi & c.hi) | (b.hi & ~c.hi)}; return r;
}
EXPORT v128 i8x16_relaxed_laneselect(v128 a, v128 b, v128 c) { return v128_bitselect(a, b, c); }
EXPORT v128 i16x8_relaxed_laneselect(v128 a, v128 b, v128 c) { return v128_bitselect(a, b, c); }
EXPORT v128 i32x4_relaxed_laneselect(v128 a, v128 b, v128 c) { return v128_bitselect(a, b, c); }
EXPORT v128 i64x2_relaxed_laneselect(v128 a, v128 b, v128 c) { return v128_bitselect(a, b, c); }
EXPORT i32 v128_any_true(v128 a) { return (a.lo | a.hi) != 0; }

/* ---- lane-wise integer templates ---- */
#define UN(name, N, T, f, expr) \
    EXPORT v128 name(v128 va) { L a, r; a.v = va; for (int i = 0; i < N; i++) { T x = a.f[i]; r.f[i] = (T)(expr); } return r.v; }
#define BIN(name, N, T, f, expr) \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb; \
        for (int i = 0; i < N; i++) { T x = a.f[i], y = b.f[i]; r.f[i] = (T)(expr); } return r.v; }
#define CMP(name, N, T, f, uf, expr) \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb; \
        for (int i = 0; i < N; i++) { T x = a.f[i], y = b.f[i]; r.uf[i] = (expr) ? -1 : 0; } return r.v; }
#define ALL_TRUE(name, N, f) \
    EXPORT i32 name(v128 va) { L a; a.v = va; for (int i = 0; i < N; i++) if (!a.f[i]) return 0; return 1; }
#define BITMASK(name, N, f) \
    EXPORT i32 name(v128 va) { L a; a.v = va; i32 m = 0; for (int i = 0; i < N; i++) m |= (a.f[i] < 0) << i; return m; }
#define SHIFT(name, N, T, f, BITS, op) \
    EXPORT v128 name(v128 va, u32 s) { L a, r; a.v = va; s &= BITS - 1; \
        for (int i = 0; i < N; i++) r.f[i] = (T)(a.f[i] op s); return r.v; }

#define SAT(lo, hi, v) ((v) < (lo) ? (lo) : (v) > (hi) ? (hi) : (v))

#define INT_SHAPE(S, N, ST, UT, sf, uf, BITS, SMIN, SMAX, UMAX)                           \
    BIN(S##_add, N, UT, uf, x + y)                                                          \
    BIN(S##_sub, N, UT, uf, x - y)                                                          \
    UN(S##_neg, N, UT, uf, 0 - x)                                                           \
    UN(S##_abs, N, ST, sf, x < 0 ? (ST)(0 - (UT)x) : x)                                     \
    BIN(S##_min_s, N, ST, sf, x < y ? x : y)                                                \
    BIN(S##_max_s, N, ST, sf, x > y ? x : y)                                                \
    BIN(S##_min_u, N, UT, uf, x < y ? x : y)                                                \
    BIN(S##_max_u, N, UT, uf, x > y ? x : y)                                                \
    CMP(S##_eq, N, UT, uf, uf, x == y)                                                      \
    CMP(S##_ne, N, UT, uf, uf, x != y)                                                      \
    CMP(S##_lt_s, N, ST, sf, uf, x < y)                                                     \
    CMP(S##_lt_u, N, UT, uf, uf, x < y)                                                     \
    CMP(S##_gt_s, N, ST, sf, uf, x > y)                                                     \
    CMP(S##_gt_u, N, UT, uf, uf, x > y)                                                     \
    CMP(S##_le_s, N, ST, sf, uf, x <= y)                                                    \
    CMP(S##_le_u, N, UT, uf, uf, x <= y)                                                    \
    CMP(S##_ge_s, N, ST, sf, uf, x >= y)                                                    \
    CMP(S##_ge_u, N, UT, uf, uf, x >= y)                                                    \
    ALL_TRUE(S##_all_true, N, uf)                                                           \
    BITMASK(S##_bitmask, N, sf)                                                             \
    SHIFT(S##_shl, N, UT, uf, BITS, <<)                                                     \
    SHIFT(S##_shr_s, N, ST, sf, BITS, >>)                                                   \
    SHIFT(S##_shr_u, N, UT, uf, BITS, >>)

INT_SHAPE(i8x16, 16, i8, u8, i8, u8, 8, -128, 127, 255)
INT_SHAPE(i16x8, 8, i16, u16, i16, u16, 16, -32768, 32767, 65535)
INT_SHAPE(i32x4, 4, i32, u32, i32, u32, 32, 0, 0, 0)
BIN(i64x2_add, 2, u64, u64, x + y)
BIN(i64x2_sub, 2, u64, u64, x - y)
BIN(i64x2_mul, 2, u64, u64, x * y)
UN(i64x2_neg, 2, u64, u64, 0 - x)
UN(i64x2_abs, 2, i64, i64, x < 0 ? (i64)(0 - (u64)x) : x)
CMP(i64x2_eq, 2, u64, u64, u64, x == y)
CMP(i64x2_ne, 2, u64, u64, u64, x != y)
CMP(i64x2_lt_s, 2, i64, i64, u64, x < y)
CMP(i64x2_gt_s, 2, i64, i64, u64, x > y)
CMP(i64x2_le_s, 2, i64, i64, u64, x <= y)
CMP(i64x2_ge_s, 2, i64, i64, u64, x >= y)
ALL_TRUE(i64x2_all_true, 2, u64)
BITMASK(i64x2_bitmask, 2, i64)
SHIFT(i64x2_shl, 2, u64, u64, 64, <<)
SHIFT(i64x2_shr_s, 2, i64, i64, 64, >>)
SHIFT(i64x2_shr_u, 2, u64, u64, 64, >>)
BIN(i16x8_mul, 8, u16, u16, (u32)x * y)
BIN(i32x4_mul, 4, u32, u32, x * y)

BIN(i8x16_add_sat_s, 16, i8, i8, SAT(-128, 127, (i32)x + y))
BIN(i8x16_add_sat_u, 16, u8, u8, SAT(0, 255, (i32)x + y))
BIN(i8x16_sub_sat_s, 16, i8, i8, SAT(-128, 127, (i32)x - y))
BIN(i8x16_sub_sat_u, 16, u8, u8, SAT(0, 255, (i32)x - y))
BIN(i16x8_add_sat_s, 8, i16, i16, SAT(-32768, 32767, (i32)x + y))
BIN(i16x8_add_sat_u, 8, u16, u16, SAT(0, 65535, (i32)x + y))
BIN(i16x8_sub_sat_s, 8, i16, i16, SAT(-32768, 32767, (i32)x - y))
BIN(i16x8_sub_sat_u, 8, u16, u16, SAT(0, 65535, (i32)x - y))
BIN(i8x16_avgr_u, 16, u8, u8, ((u32)x + y + 1) >> 1)
BIN(i16x8_avgr_u, 8, u16, u16, ((u32)x + y + 1) >> 1)
BIN(i16x8_q15mulr_sat_s, 8, i16, i16, SAT(-32768, 32767, ((i32)x * y + 0x4000) >> 15))
BIN(i16x8_relaxed_q15mulr_s, 8, i16, i16, SAT(-32768, 32767, ((i32)x * y + 0x4000) >> 15))
UN(i8x16_popcnt, 16, u8, u8, __builtin_popcount(x))

/* ---- narrow, extend, extmul, extadd, dot ---- */
#define NARROW(name, NI, NT, nf, WT, wf, lo, hi)                                               \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb;                       \
        for (int i = 0; i < NI; i++) { WT x = a.wf[i]; r.nf[i] = (NT)SAT(lo, hi, x); }          \
        for (int i = 0; i < NI; i++) { WT x = b.wf[i]; r.nf[NI + i] = (NT)SAT(lo, hi, x); }     \
        return r.v; }
NARROW(i8x16_narrow_i16x8_s, 8, i8, i8, i16, i16, -128, 127)
NARROW(i8x16_narrow_i16x8_u, 8, u8, u8, i16, i16, 0, 255)
NARROW(i16x8_narrow_i32x4_s, 4, i16, i16, i32, i32, -32768, 32767)
NARROW(i16x8_narrow_i32x4_u, 4, u16, u16, i32, i32, 0, 65535)

#define EXTEND(name, N, NT, nf, WT, wf, off)                                                   \
    EXPORT v128 name(v128 va) { L a, r; a.v = va; for (int i = 0; i < N; i++) r.wf[i] = (WT)(NT)a.nf[off + i]; return r.v; }
#define EXTEND4(W, wf, WT, UWT, uwf, N, nshape, nf, NT, UNT, unf) \
    EXTEND(W##_extend_low_##nshape##_s, N, NT, nf, WT, wf, 0)     \
    EXTEND(W##_extend_high_##nshape##_s, N, NT, nf, WT, wf, N)    \
    EXTEND(W##_extend_low_##nshape##_u, N, UNT, unf, UWT, uwf, 0) \
    EXTEND(W##_extend_high_##nshape##_u, N, UNT, unf, UWT, uwf, N)
EXTEND4(i16x8, i16, i16, u16, u16, 8, i8x16, i8, i8, u8, u8)
EXTEND4(i32x4, i32, i32, u32, u32, 4, i16x8, i16, i16, u16, u16)
EXTEND4(i64x2, i64, i64, u64, u64, 2, i32x4, i32, i32, u32, u32)

#define EXTMUL(name, N, NT, nf, WT, wf, off)                                                   \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb;                       \
        for (int i = 0; i < N; i++) r.wf[i] = (WT)(NT)a.nf[off + i] * (WT)(NT)b.nf[off + i]; return r.v; }
#define EXTMUL4(W, wf, WT, UWT, uwf, N, nshape, nf, NT, UNT, unf) \
    EXTMUL(W##_extmul_low_##nshape##_s, N, NT, nf, WT, wf, 0)     \
    EXTMUL(W##_extmul_high_##nshape##_s, N, NT, nf, WT, wf, N)    \
    EXTMUL(W##_extmul_low_##nshape##_u, N, UNT, unf, UWT, uwf, 0) \
    EXTMUL(W##_extmul_high_##nshape##_u, N, UNT, unf, UWT, uwf, N)
EXTMUL4(i16x8, i16, i16, u16, u16, 8, i8x16, i8, i8, u8, u8)
EXTMUL4(i32x4, i32, i32, u32, u32, 4, i16x8, i16, i16, u16, u16)
EXTMUL4(i64x2, i64, i64, u64, u64, 2, i32x4, i32, i32, u32, u32)

#define EXTADD(name, N, NT, nf, WT, wf)                                                        \
    EXPORT v128 name(v128 va) { L a, r; a.v = va;                                              \
        for (int i = 0; i < N; i++) r.wf[i] = (WT)((WT)(NT)a.nf[2 * i] + (WT)(NT)a.nf[2 * i + 1]); return r.v; }
EXTADD(i16x8_extadd_pairwise_i8x16_s, 8, i8, i8, i16, i16)
EXTADD(i16x8_extadd_pairwise_i8x16_u, 8, u8, u8, u16, u16)
EXTADD(i32x4_extadd_pairwise_i16x8_s, 4, i16, i16, i32, i32)
EXTADD(i32x4_extadd_pairwise_i16x8_u, 4, u16, u16, u32, u32)

EXPORT v128 i32x4_dot_i16x8_s(v128 va, v128 vb) {
    L a, b, r; a.v = va; b.v = vb;
    for (int i = 0; i < 4; i++)
        r.u32[i] = (u32)((i32)a.i16[2 * i] * b.i16[2 * i]) + (u32)((i32)a.i16[2 * i + 1] * b.i16[2 * i + 1]);
    return r.v;
}
EXPORT v128 i16x8_relaxed_dot_i8x16_i7x16_s(v128 va, v128 vb) {
    L a, b, r; a.v = va; b.v = vb;
    for (int i = 0; i < 8; i++) r.u16[i] = (u16)((i32)a.i8[2 * i] * b.i8[2 * i] + (i32)a.i8[2 * i + 1] * b.i8[2 * i + 1]);
    return r.v;
}
EXPORT v128 i32x4_relaxed_dot_i8x16_i7x16_add_s(v128 va, v128 vb, v128 vc) {
    L d, c, r; d.v = i16x8_relaxed_dot_i8x16_i7x16_s(va, vb); c.v = vc;
    for (int i = 0; i < 4; i++) r.u32[i] = (u32)((i32)d.i16[2 * i] + d.i16[2 * i + 1]) + c.u32[i];
    return r.v;
}

/* ---- floats ---- */
static inline float fsqrt32(float x) { float r; __asm__("fsqrt.s %0, %1" : "=f"(r) : "f"(x)); return r; }
static inline double fsqrt64(double x) { double r; __asm__("fsqrt.d %0, %1" : "=f"(r) : "f"(x)); return r; }
static inline float fma32(float a, float b, float c) { float r; __asm__("fmadd.s %0, %1, %2, %3" : "=f"(r) : "f"(a), "f"(b), "f"(c)); return r; }
static inline double fma64(double a, double b, double c) { double r; __asm__("fmadd.d %0, %1, %2, %3" : "=f"(r) : "f"(a), "f"(b), "f"(c)); return r; }

static inline float wmin32(float x, float y) {
    if (x != x || y != y) return bitsf(F32_CANON);
    if (x == y) return bitsf(fbits(x) | fbits(y));
    return x < y ? x : y;
}
static inline float wmax32(float x, float y) {
    if (x != x || y != y) return bitsf(F32_CANON);
    if (x == y) return bitsf(fbits(x) & fbits(y));
    return x > y ? x : y;
}
static inline double wmin64(double x, double y) {
    if (x != x || y != y) return bitsd(F64_CANON);
    if (x == y) return bitsd(dbits(x) | dbits(y));
    return x < y ? x : y;
}
static inline double wmax64(double x, double y) {
    if (x != x || y != y) return bitsd(F64_CANON);
    if (x == y) return bitsd(dbits(x) & dbits(y));
    return x > y ? x : y;
}

/* Rounding to an integral value with a static rounding mode: exact below 2^23 (2^52), the value itself
 * above (already integral), x + x for a NaN (quieted, canonical on RV64), the sign kept (ceil(-0.5) = -0). */
#define ROUND32(name, rm)                                                                           \
    static inline float name(float x) {                                                             \
        if (x != x) return x + x;                                                                   \
        u32 b = fbits(x);                                                                           \
        if ((b & 0x7fffffffu) >= 0x4b000000u) return x;                                             \
        i64 i; __asm__("fcvt.l.s %0, %1, " rm : "=r"(i) : "f"(x));                                  \
        return bitsf(fbits((float)i) | (b & 0x80000000u));                                          \
    }
#define ROUND64(name, rm)                                                                           \
    static inline double name(double x) {                                                           \
        if (x != x) return x + x;                                                                   \
        u64 b = dbits(x);                                                                           \
        if ((b & 0x7fffffffffffffffull) >= 0x4330000000000000ull) return x;                         \
        i64 i; __asm__("fcvt.l.d %0, %1, " rm : "=r"(i) : "f"(x));                                  \
        return bitsd(dbits((double)i) | (b & 0x8000000000000000ull));                               \
    }
ROUND32(ceil32, "rup") ROUND32(floor32, "rdn") ROUND32(trunc32, "rtz") ROUND32(nearest32, "rne")
ROUND64(ceil64, "rup") ROUND64(floor64, "rdn") ROUND64(trunc64, "rtz") ROUND64(nearest64, "rne")

#define FUN32(name, expr) \
    EXPORT v128 name(v128 va) { L a, r; a.v = va; for (int i = 0; i < 4; i++) { float x = a.f32[i]; r.f32[i] = (expr); } return r.v; }
#define FUN64(name, expr) \
    EXPORT v128 name(v128 va) { L a, r; a.v = va; for (int i = 0; i < 2; i++) { double x = a.f64[i]; r.f64[i] = (expr); } return r.v; }
#define FBIN32(name, expr) \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb; \
        for (int i = 0; i < 4; i++) { float x = a.f32[i], y = b.f32[i]; r.f32[i] = (expr); } return r.v; }
#define FBIN64(name, expr) \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb; \
        for (int i = 0; i < 2; i++) { double x = a.f64[i], y = b.f64[i]; r.f64[i] = (expr); } return r.v; }
#define FCMP32(name, expr) \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb; \
        for (int i = 0; i < 4; i++) { float x = a.f32[i], y = b.f32[i]; r.u32[i] = (expr) ? -1 : 0; } return r.v; }
#define FCMP64(name, expr) \
    EXPORT v128 name(v128 va, v128 vb) { L a, b, r; a.v = va; b.v = vb; \
        for (int i = 0; i < 2; i++) { double x = a.f64[i], y = b.f64[i]; r.u64[i] = (expr) ? -1 : 0; } return r.v; }

EXPORT v128 f32x4_abs(v128 a) { v128 r = {a.lo & 0x7fffffff7fffffffull, a.hi & 0x7fffffff7fffffffull}; return r; }
EXPORT v128 f32x4_neg(v128 a) { v128 r = {a.lo ^ 0x8000000080000000ull, a.hi ^ 0x8000000080000000ull}; return r; }
EXPORT v128 f64x2_abs(v128 a) { v128 r = {a.lo & 0x7fffffffffffffffull, a.hi & 0x7fffffffffffffffull}; return r; }
EXPORT v128 f64x2_neg(v128 a) { v128 r = {a.lo ^ 0x8000000000000000ull, a.hi ^ 0x8000000000000000ull}; return r; }
FUN32(f32x4_sqrt, fsqrt32(x)) FUN64(f64x2_sqrt, fsqrt64(x))
FUN32(f32x4_ceil, ceil32(x)) FUN32(f32x4_floor, floor32(x)) FUN32(f32x4_trunc, trunc32(x)) FUN32(f32x4_nearest, nearest32(x))
FUN64(f64x2_ceil, ceil64(x)) FUN64(f64x2_floor, floor64(x)) FUN64(f64x2_trunc, trunc64(x)) FUN64(f64x2_nearest, nearest64(x))
FBIN32(f32x4_add, x + y) FBIN32(f32x4_sub, x - y) FBIN32(f32x4_mul, x * y) FBIN32(f32x4_div, x / y)
FBIN64(f64x2_add, x + y) FBIN64(f64x2_sub, x - y) FBIN64(f64x2_mul, x * y) FBIN64(f64x2_div, x / y)
FBIN32(f32x4_min, wmin32(x, y)) FBIN32(f32x4_max, wmax32(x, y))
FBIN64(f64x2_min, wmin64(x, y)) FBIN64(f64x2_max, wmax64(x, y))
FBIN32(f32x4_relaxed_min, wmin32(x, y)) FBIN32(f32x4_relaxed_max, wmax32(x, y))
FBIN64(f64x2_relaxed_min, wmin64(x, y)) FBIN64(f64x2_relaxed_max, wmax64(x, y))
FBIN32(f32x4_pmin, y < x ? y : x) FBIN32(f32x4_pmax, x < y ? y : x)
FBIN64(f64x2_pmin, y < x ? y : x) FBIN64(f64x2_pmax, x < y ? y : x)
FCMP32(f32x4_eq, x == y) FCMP32(f32x4_ne, x != y) FCMP32(f32x4_lt, x < y)
FCMP32(f32x4_gt, x > y) FCMP32(f32x4_le, x <= y) FCMP32(f32x4_ge, x >= y)
FCMP64(f64x2_eq, x == y) FCMP64(f64x2_ne, x != y) FCMP64(f64x2_lt, x < y)
FCMP64(f64x2_gt, x > y) FCMP64(f64x2_le, x <= y) FCMP64(f64x2_ge, x >= y)

EXPORT v128 f32x4_relaxed_madd(v128 va, v128 vb, v128 vc) {
    L a, b, c, r; a.v = va; b.v = vb; c.v = vc;
    for (int i = 0; i < 4; i++) r.f32[i] = fma32(a.f32[i], b.f32[i], c.f32[i]);
    return r.v;
}
EXPORT v128 f32x4_relaxed_nmadd(v128 va, v128 vb, v128 vc) {
    L a, b, c, r; a.v = va; b.v = vb; c.v = vc;
    for (int i = 0; i < 4; i++) r.f32[i] = fma32(bitsf(fbits(a.f32[i]) ^ 0x80000000u), b.f32[i], c.f32[i]);
    return r.v;
}
EXPORT v128 f64x2_relaxed_madd(v128 va, v128 vb, v128 vc) {
    L a, b, c, r; a.v = va; b.v = vb; c.v = vc;
    for (int i = 0; i < 2; i++) r.f64[i] = fma64(a.f64[i], b.f64[i], c.f64[i]);
    return r.v;
}
EXPORT v128 f64x2_relaxed_nmadd(v128 va, v128 vb, v128 vc) {
    L a, b, c, r; a.v = va; b.v = vb; c.v = vc;
    for (int i = 0; i < 2; i++) r.f64[i] = fma64(bitsd(dbits(a.f64[i]) ^ 0x8000000000000000ull), b.f64[i], c.f64[i]);
    return r.v;
}

/* ---- conversions ---- */
static inline i32 sat_s32_f(float x) {
    if (x != x) return 0;
    if (x >= 2147483648.0f) return 2147483647;
    if (x < -2147483648.0f) return -2147483647 - 1;
    return (i32)x;
}
static inline u32 sat_u32_f(float x) {
    if (x != x || x <= -1.0f) return 0;
    if (x >= 4294967296.0f) return 4294967295u;
    return (u32)x;
}
static inline i32 sat_s32_d(double x) {
    if (x != x) return 0;
    if (x >= 2147483648.0) return 2147483647;
    if (x <= -2147483649.0) return -2147483647 - 1;
    return (i32)x;
}
static inline u32 sat_u32_d(double x) {
    if (x != x || x <= -1.0) return 0;
    if (x >= 4294967296.0) return 4294967295u;
    return (u32)x;
}
EXPORT v128 i32x4_trunc_sat_f32x4_s(v128 va) { L a, r; a.v = va; for (int i = 0; i < 4; i++) r.i32[i] = sat_s32_f(a.f32[i]); return r.v; }
EXPORT v128 i32x4_trunc_sat_f32x4_u(v128 va) { L a, r; a.v = va; for (int i = 0; i < 4; i++) r.u32[i] = sat_u32_f(a.f32[i]); return r.v; }
EXPORT v128 i32x4_trunc_sat_f64x2_s_zero(v128 va) { L a, r; a.v = va; r.i32[0] = sat_s32_d(a.f64[0]); r.i32[1] = sat_s32_d(a.f64[1]); r.v.hi = 0; return r.v; }
EXPORT v128 i32x4_trunc_sat_f64x2_u_zero(v128 va) { L a, r; a.v = va; r.u32[0] = sat_u32_d(a.f64[0]); r.u32[1] = sat_u32_d(a.f64[1]); r.v.hi = 0; return r.v; }
EXPORT v128 i32x4_relaxed_trunc_f32x4_s(v128 a) { return i32x4_trunc_sat_f32x4_s(a); }
EXPORT v128 i32x4_relaxed_trunc_f32x4_u(v128 a) { return i32x4_trunc_sat_f32x4_u(a); }
EXPORT v128 i32x4_relaxed_trunc_f64x2_s_zero(v128 a) { return i32x4_trunc_sat_f64x2_s_zero(a); }
EXPORT v128 i32x4_relaxed_trunc_f64x2_u_zero(v128 a) { return i32x4_trunc_sat_f64x2_u_zero(a); }
EXPORT v128 f32x4_convert_i32x4_s(v128 va) { L a, r; a.v = va; for (int i = 0; i < 4; i++) r.f32[i] = (float)a.i32[i]; return r.v; }
EXPORT v128 f32x4_convert_i32x4_u(v128 va) { L a, r; a.v = va; for (int i = 0; i < 4; i++) r.f32[i] = (float)a.u32[i]; return r.v; }
EXPORT v128 f64x2_convert_low_i32x4_s(v128 va) { L a, r; a.v = va; for (int i = 0; i < 2; i++) r.f64[i] = (double)a.i32[i]; return r.v; }
EXPORT v128 f64x2_convert_low_i32x4_u(v128 va) { L a, r; a.v = va; for (int i = 0; i < 2; i++) r.f64[i] = (double)a.u32[i]; return r.v; }
EXPORT v128 f32x4_demote_f64x2_zero(v128 va) { L a, r; a.v = va; r.f32[0] = (float)a.f64[0]; r.f32[1] = (float)a.f64[1]; r.v.hi = 0; return r.v; }
EXPORT v128 f64x2_promote_low_f32x4(v128 va) { L a, r; a.v = va; r.f64[0] = (double)a.f32[0]; r.f64[1] = (double)a.f32[1]; return r.v; }
