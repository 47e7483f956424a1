#include "textflag.h"

// func rowsAxpyAVX(out, a, m *float64, rows, n, stride int)
// out[j] += a[r]*m[r*stride+j], r in order, for eight j at a time (two
// independent sums, one broadcast) and then four.
TEXT ·rowsAxpyAVX(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ rows+24(FP), CX
	MOVQ n+32(FP), R8
	MOVQ stride+40(FP), R9
	SHLQ $3, R9

pair:
	CMPQ R8, $8
	JL single
	VMOVUPD (DI), Y0
	VMOVUPD 32(DI), Y2
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

prow:
	VBROADCASTSD (R11), Y1
	VMULPD (R12), Y1, Y3
	VMULPD 32(R12), Y1, Y4
	VADDPD Y3, Y0, Y0
	VADDPD Y4, Y2, Y2
	ADDQ $8, R11
	ADDQ R9, R12
	DECQ R13
	JNZ prow

	VMOVUPD Y0, (DI)
	VMOVUPD Y2, 32(DI)
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $8, R8
	JMP pair

single:
	CMPQ R8, $4
	JL adone
	VMOVUPD (DI), Y0
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

row:
	VBROADCASTSD (R11), Y1
	VMULPD (R12), Y1, Y1
	VADDPD Y1, Y0, Y0
	ADDQ $8, R11
	ADDQ R9, R12
	DECQ R13
	JNZ row

	VMOVUPD Y0, (DI)

adone:
	VZEROUPPER
	RET

// func rowsUpdateAVX(m, a, u, b, v *float64, rows, n, stride int)
// m[r*stride+j] += a[r]*u[j] + b[r]*v[j], four j at a time.
TEXT ·rowsUpdateAVX(SB), NOSPLIT, $0-64
	MOVQ m+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ u+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ v+32(FP), AX
	MOVQ rows+40(FP), CX
	MOVQ n+48(FP), R8
	MOVQ stride+56(FP), R9
	SHLQ $3, R9

rowloop:
	VBROADCASTSD (SI), Y2
	VBROADCASTSD (BX), Y3
	XORQ R10, R10
	MOVQ R8, R11

col:
	VMULPD (DX)(R10*1), Y2, Y0
	VMULPD (AX)(R10*1), Y3, Y1
	VADDPD Y1, Y0, Y0
	VADDPD (DI)(R10*1), Y0, Y0
	VMOVUPD Y0, (DI)(R10*1)
	ADDQ $32, R10
	SUBQ $4, R11
	JG col

	ADDQ $8, SI
	ADDQ $8, BX
	ADDQ R9, DI
	DECQ CX
	JNZ rowloop
	VZEROUPPER
	RET

// TABLEPAIR loads table[idx[0]] and table[idx[1]] into the two lanes of
// xo, the indexes being the two lanes of xi and the table at DX: the
// sigmoids' exp2Table lookups with scalar loads, where VGATHERQPD is
// slower.
#define TABLEPAIR(xi, xo) \
	VMOVQ xi, R10 \
	VPEXTRQ $1, xi, R11 \
	VMOVSD (DX)(R10*8), xo \
	VMOVHPD (DX)(R11*8), xo, xo

// func sigmoidsAVX2(v *float64, n int, c *[12]float64, table *float64, gather bool) (done int)
// v[i] = 1/(1+exp(-v[i])) for n (a multiple of 4) values: the operations
// of sigmoidsGo, in its order, four at a time. It stops before the first
// block of four holding a value outside [-708, 708] or NaN, leaving it as
// it was, and returns how many values it did. c holds the sign bit,
// 256/ln 2, the 1.5·2^52 shift, ln 2/256 high and low, 1, 0.5, 1/6, 1/24,
// the index mask 255, -708 and 708; table is exp2Table. With gather the
// table is read with VGATHERQPD, else with scalar loads, the indexes taken
// out of the vector: which is faster depends on the processor (the gather
// is twice as slow for the whole kernel on Skylake-class Xeons, and faster
// on Sapphire Rapids; pickSigmoidLoads times both).
TEXT ·sigmoidsAVX2(SB), NOSPLIT, $0-48
	MOVQ v+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ c+16(FP), SI
	MOVQ table+24(FP), DX
	MOVBQZX gather+32(FP), R9
	VBROADCASTSD 0(SI), Y8
	VBROADCASTSD 8(SI), Y9
	VBROADCASTSD 16(SI), Y10
	VBROADCASTSD 24(SI), Y11
	VBROADCASTSD 32(SI), Y12
	VBROADCASTSD 40(SI), Y13
	VBROADCASTSD 48(SI), Y14
	MOVQ CX, R8

sloop:
	VMOVUPD (DI), Y0
	VBROADCASTSD 80(SI), Y6
	VCMPPD $0x1d, Y6, Y0, Y6
	VBROADCASTSD 88(SI), Y7
	VCMPPD $0x12, Y7, Y0, Y7
	VANDPD Y7, Y6, Y6
	VMOVMSKPD Y6, AX
	CMPQ AX, $15
	JNE sbail
	VXORPD Y8, Y0, Y0
	VMULPD Y9, Y0, Y1
	VADDPD Y10, Y1, Y1
	VSUBPD Y10, Y1, Y2
	VMULPD Y11, Y2, Y3
	VSUBPD Y3, Y0, Y3
	VMULPD Y12, Y2, Y4
	VSUBPD Y4, Y3, Y3
	VMULPD Y3, Y3, Y4
	VADDPD Y13, Y3, Y5
	VBROADCASTSD 56(SI), Y6
	VMULPD Y6, Y3, Y6
	VADDPD Y14, Y6, Y6
	VBROADCASTSD 64(SI), Y7
	VMULPD Y7, Y4, Y7
	VADDPD Y7, Y6, Y6
	VMULPD Y6, Y4, Y6
	VADDPD Y6, Y5, Y5
	VBROADCASTSD 72(SI), Y7
	VPAND Y7, Y1, Y6
	TESTQ R9, R9
	JNZ sgather
	VEXTRACTI128 $1, Y6, X7
	TABLEPAIR(X6, X4)
	TABLEPAIR(X7, X6)
	VINSERTF128 $1, X6, Y4, Y4
	JMP sloaded

sgather:
	VPCMPEQQ Y7, Y7, Y7
	VGATHERQPD Y7, (DX)(Y6*8), Y4

sloaded:
	VMULPD Y5, Y4, Y4
	VPSRLQ $8, Y1, Y1
	VPSLLQ $52, Y1, Y1
	VPADDQ Y1, Y4, Y4
	VADDPD Y13, Y4, Y4
	VDIVPD Y4, Y13, Y4
	VMOVUPD Y4, (DI)
	ADDQ $32, DI
	SUBQ $4, CX
	JG sloop

sbail:
	SUBQ CX, R8
	MOVQ R8, done+40(FP)
	VZEROUPPER
	RET

// func sigmoidsAVX512(v *float64, n int, c *[12]float64, table *float64, gather bool) (done int)
// sigmoidsAVX2 eight at a time, in AVX-512 registers: the same operations
// in the same order, so the same bits. n is a multiple of 8; it stops
// before the first block of eight holding a value outside [-708, 708] or
// NaN and returns how many values it did.
TEXT ·sigmoidsAVX512(SB), NOSPLIT, $0-48
	MOVQ v+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ c+16(FP), SI
	MOVQ table+24(FP), DX
	MOVBQZX gather+32(FP), R9
	VBROADCASTSD 0(SI), Z8
	VBROADCASTSD 8(SI), Z9
	VBROADCASTSD 16(SI), Z10
	VBROADCASTSD 24(SI), Z11
	VBROADCASTSD 32(SI), Z12
	VBROADCASTSD 40(SI), Z13
	VBROADCASTSD 48(SI), Z14
	VBROADCASTSD 56(SI), Z15
	VBROADCASTSD 64(SI), Z16
	VPBROADCASTQ 72(SI), Z17
	VBROADCASTSD 80(SI), Z18
	VBROADCASTSD 88(SI), Z19
	MOVQ CX, R8

zloop:
	VMOVUPD (DI), Z0
	VCMPPD $0x1d, Z18, Z0, K1
	VCMPPD $0x12, Z19, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, AX
	CMPQ AX, $0xff
	JNE zbail
	VPXORQ Z8, Z0, Z0
	VMULPD Z9, Z0, Z1
	VADDPD Z10, Z1, Z1
	VSUBPD Z10, Z1, Z2
	VMULPD Z11, Z2, Z3
	VSUBPD Z3, Z0, Z3
	VMULPD Z12, Z2, Z4
	VSUBPD Z4, Z3, Z3
	VMULPD Z3, Z3, Z4
	VADDPD Z13, Z3, Z5
	VMULPD Z15, Z3, Z6
	VADDPD Z14, Z6, Z6
	VMULPD Z16, Z4, Z7
	VADDPD Z7, Z6, Z6
	VMULPD Z6, Z4, Z6
	VADDPD Z6, Z5, Z5
	VPANDQ Z17, Z1, Z6
	TESTQ R9, R9
	JNZ zgather
	VEXTRACTI64X2 $1, Z6, X21
	VEXTRACTI64X2 $2, Z6, X22
	VEXTRACTI64X2 $3, Z6, X23
	TABLEPAIR(X6, X4)
	TABLEPAIR(X21, X6)
	TABLEPAIR(X22, X7)
	TABLEPAIR(X23, X20)
	VINSERTF128 $1, X6, Y4, Y4
	VINSERTF64X2 $1, X20, Y7, Y7
	VINSERTF64X4 $1, Y7, Z4, Z4
	JMP zloaded

zgather:
	KXNORW K2, K2, K2
	VGATHERQPD (DX)(Z6*8), K2, Z4

zloaded:
	VMULPD Z5, Z4, Z4
	VPSRLQ $8, Z1, Z1
	VPSLLQ $52, Z1, Z1
	VPADDQ Z1, Z4, Z4
	VADDPD Z13, Z4, Z4
	VDIVPD Z4, Z13, Z4
	VMOVUPD Z4, (DI)
	ADDQ $64, DI
	SUBQ $8, CX
	JG zloop

zbail:
	SUBQ CX, R8
	MOVQ R8, done+40(FP)
	VZEROUPPER
	RET

// func pow2AVX2(x *float64, n int, c *[11]float64)
// x[i] = 2^x[i] for n (a multiple of 4) values in [-1020, 0]: pow2's
// operations in its order, four at a time. For x ≤ 0 pow2's k is
// trunc(x - 0.5). c holds 0.5, ln 2 high and low, p1 … p5, 1, 2 and the
// sign bit.
TEXT ·pow2AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ c+16(FP), SI
	VBROADCASTSD 0(SI), Y8
	VBROADCASTSD 8(SI), Y9
	VBROADCASTSD 16(SI), Y10
	VBROADCASTSD 64(SI), Y11
	VBROADCASTSD 72(SI), Y12
	VBROADCASTSD 80(SI), Y13

ploop:
	VMOVUPD (DI), Y0
	VSUBPD Y8, Y0, Y1
	VCVTTPD2DQY Y1, X1
	VCVTDQ2PD X1, Y2
	VPMOVSXDQ X1, Y7
	VSUBPD Y2, Y0, Y2
	VMULPD Y9, Y2, Y3
	VXORPD Y13, Y2, Y4
	VMULPD Y10, Y4, Y4
	VSUBPD Y4, Y3, Y5
	VMULPD Y5, Y5, Y6
	VBROADCASTSD 56(SI), Y0
	VMULPD Y0, Y6, Y0
	VBROADCASTSD 48(SI), Y1
	VADDPD Y1, Y0, Y0
	VMULPD Y0, Y6, Y0
	VBROADCASTSD 40(SI), Y1
	VADDPD Y1, Y0, Y0
	VMULPD Y0, Y6, Y0
	VBROADCASTSD 32(SI), Y1
	VADDPD Y1, Y0, Y0
	VMULPD Y0, Y6, Y0
	VBROADCASTSD 24(SI), Y1
	VADDPD Y1, Y0, Y0
	VMULPD Y0, Y6, Y0
	VSUBPD Y0, Y5, Y0
	VMULPD Y0, Y5, Y1
	VSUBPD Y0, Y12, Y2
	VDIVPD Y2, Y1, Y1
	VSUBPD Y1, Y4, Y1
	VSUBPD Y3, Y1, Y1
	VSUBPD Y1, Y11, Y1
	VPSLLQ $52, Y7, Y7
	VPADDQ Y7, Y1, Y1
	VMOVUPD Y1, (DI)
	ADDQ $32, DI
	SUBQ $4, CX
	JG ploop
	VZEROUPPER
	RET

// func lanesAxpyAVX(out, b, a, m *float64, rows, n int)
// out[c] = b[c] + Σ_r a[r]·m[r·n+c], r in order, where every element is a
// vector of four lanes (an autoencoder each) and c < n: rowsAxpy with a
// vector in place of the broadcast scalar, starting from b (which may be
// out). Four columns at a time (four independent sums), then two, then one.
TEXT ·lanesAxpyAVX(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ b+8(FP), BX
	MOVQ a+16(FP), SI
	MOVQ m+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ n+40(FP), R8
	MOVQ R8, R9
	SHLQ $5, R9 // a row of m, in bytes

lquad:
	CMPQ R8, $4
	JL lpair
	VMOVUPD (BX), Y0
	VMOVUPD 32(BX), Y1
	VMOVUPD 64(BX), Y2
	VMOVUPD 96(BX), Y3
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

lqrow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VMULPD 32(R12), Y4, Y6
	VMULPD 64(R12), Y4, Y7
	VMULPD 96(R12), Y4, Y8
	VADDPD Y5, Y0, Y0
	VADDPD Y6, Y1, Y1
	VADDPD Y7, Y2, Y2
	VADDPD Y8, Y3, Y3
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ lqrow

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, BX
	ADDQ $128, DX
	SUBQ $4, R8
	JMP lquad

lpair:
	CMPQ R8, $2
	JL lone
	VMOVUPD (BX), Y0
	VMOVUPD 32(BX), Y1
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

lprow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VMULPD 32(R12), Y4, Y6
	VADDPD Y5, Y0, Y0
	VADDPD Y6, Y1, Y1
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ lprow

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $64, BX
	ADDQ $64, DX
	SUBQ $2, R8

lone:
	CMPQ R8, $0
	JE ldone
	VMOVUPD (BX), Y0
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

lorow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VADDPD Y5, Y0, Y0
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ lorow

	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, BX
	ADDQ $32, DX
	DECQ R8
	JMP lone

ldone:
	VZEROUPPER
	RET

// func lanesDotAVX(out, b, a, m *float64, rows, n int)
// out[c] = b[c] + Σ_r a[r]·m[c·rows+r], r in order, every element a
// vector of four lanes: lanesAxpy with m transposed (row c of m holds
// output c's weights), so that one matrix serves both directions. Four
// outputs at a time (four independent sums, four rows of m read side by
// side), then two, then one.
TEXT ·lanesDotAVX(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ b+8(FP), BX
	MOVQ a+16(FP), SI
	MOVQ m+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ n+40(FP), R8
	MOVQ CX, R9
	SHLQ $5, R9 // a row of m, in bytes

dquad:
	CMPQ R8, $4
	JL dpair
	VMOVUPD (BX), Y0
	VMOVUPD 32(BX), Y1
	VMOVUPD 64(BX), Y2
	VMOVUPD 96(BX), Y3
	MOVQ SI, R11
	MOVQ DX, R12
	LEAQ (DX)(R9*2), R13
	MOVQ CX, R10

dqrow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VMULPD (R12)(R9*1), Y4, Y6
	VMULPD (R13), Y4, Y7
	VMULPD (R13)(R9*1), Y4, Y8
	VADDPD Y5, Y0, Y0
	VADDPD Y6, Y1, Y1
	VADDPD Y7, Y2, Y2
	VADDPD Y8, Y3, Y3
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	DECQ R10
	JNZ dqrow

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, BX
	LEAQ (DX)(R9*4), DX
	SUBQ $4, R8
	JMP dquad

dpair:
	CMPQ R8, $2
	JL done
	VMOVUPD (BX), Y0
	VMOVUPD 32(BX), Y1
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R10

dprow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VMULPD (R12)(R9*1), Y4, Y6
	VADDPD Y5, Y0, Y0
	VADDPD Y6, Y1, Y1
	ADDQ $32, R11
	ADDQ $32, R12
	DECQ R10
	JNZ dprow

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $64, BX
	LEAQ (DX)(R9*2), DX
	SUBQ $2, R8

done:
	CMPQ R8, $0
	JE ddone
	VMOVUPD (BX), Y0
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R10

dorow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VADDPD Y5, Y0, Y0
	ADDQ $32, R11
	ADDQ $32, R12
	DECQ R10
	JNZ dorow

	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, BX
	ADDQ R9, DX
	DECQ R8
	JMP done

ddone:
	VZEROUPPER
	RET

// func lanesAxpyAVX512(out, b, a, m *float64, rows, n int)
// lanesAxpyAVX in AVX-512 registers, each holding two columns' vectors of
// four lanes, a[r] broadcast to both halves: eight columns at a time (four
// independent sums), then four, then two, then one in a YMM register. The
// same operations in the same order, so the same bits.
TEXT ·lanesAxpyAVX512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ b+8(FP), BX
	MOVQ a+16(FP), SI
	MOVQ m+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ n+40(FP), R8
	MOVQ R8, R9
	SHLQ $5, R9 // a row of m, in bytes

xoct:
	CMPQ R8, $8
	JL xquad
	VMOVUPD (BX), Z0
	VMOVUPD 64(BX), Z1
	VMOVUPD 128(BX), Z2
	VMOVUPD 192(BX), Z3
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

xorow:
	VBROADCASTF64X4 (R11), Z4
	VMULPD (R12), Z4, Z5
	VMULPD 64(R12), Z4, Z6
	VMULPD 128(R12), Z4, Z7
	VMULPD 192(R12), Z4, Z8
	VADDPD Z5, Z0, Z0
	VADDPD Z6, Z1, Z1
	VADDPD Z7, Z2, Z2
	VADDPD Z8, Z3, Z3
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ xorow

	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VMOVUPD Z2, 128(DI)
	VMOVUPD Z3, 192(DI)
	ADDQ $256, DI
	ADDQ $256, BX
	ADDQ $256, DX
	SUBQ $8, R8
	JMP xoct

xquad:
	CMPQ R8, $4
	JL xpair
	VMOVUPD (BX), Z0
	VMOVUPD 64(BX), Z1
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

xqrow:
	VBROADCASTF64X4 (R11), Z4
	VMULPD (R12), Z4, Z5
	VMULPD 64(R12), Z4, Z6
	VADDPD Z5, Z0, Z0
	VADDPD Z6, Z1, Z1
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ xqrow

	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	ADDQ $128, DI
	ADDQ $128, BX
	ADDQ $128, DX
	SUBQ $4, R8

xpair:
	CMPQ R8, $2
	JL xone
	VMOVUPD (BX), Z0
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

xprow:
	VBROADCASTF64X4 (R11), Z4
	VMULPD (R12), Z4, Z5
	VADDPD Z5, Z0, Z0
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ xprow

	VMOVUPD Z0, (DI)
	ADDQ $64, DI
	ADDQ $64, BX
	ADDQ $64, DX
	SUBQ $2, R8

xone:
	CMPQ R8, $0
	JE xdone
	VMOVUPD (BX), Y0
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ CX, R13

xsrow:
	VMOVUPD (R11), Y4
	VMULPD (R12), Y4, Y5
	VADDPD Y5, Y0, Y0
	ADDQ $32, R11
	ADDQ R9, R12
	DECQ R13
	JNZ xsrow

	VMOVUPD Y0, (DI)

xdone:
	VZEROUPPER
	RET

// func lanesUpdateAVX512(m, a, u, b, v *float64, rows, n int)
// lanesUpdateAVX two columns at a time in AVX-512 registers (a[r] and b[r]
// broadcast to both halves), the last odd column in a YMM register: the
// same operations in the same order.
TEXT ·lanesUpdateAVX512(SB), NOSPLIT, $0-56
	MOVQ m+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ u+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ v+32(FP), AX
	MOVQ rows+40(FP), CX
	MOVQ n+48(FP), R8

vrow:
	VBROADCASTF64X4 (SI), Z2
	VBROADCASTF64X4 (BX), Z3
	XORQ R10, R10
	MOVQ R8, R11

vpair:
	CMPQ R11, $2
	JL vone
	VMULPD (DX)(R10*1), Z2, Z0
	VMULPD (AX)(R10*1), Z3, Z1
	VADDPD Z1, Z0, Z0
	VADDPD (DI)(R10*1), Z0, Z0
	VMOVUPD Z0, (DI)(R10*1)
	ADDQ $64, R10
	SUBQ $2, R11
	JMP vpair

vone:
	CMPQ R11, $0
	JE vnext
	VMULPD (DX)(R10*1), Y2, Y0
	VMULPD (AX)(R10*1), Y3, Y1
	VADDPD Y1, Y0, Y0
	VADDPD (DI)(R10*1), Y0, Y0
	VMOVUPD Y0, (DI)(R10*1)
	ADDQ $32, R10

vnext:
	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ R10, DI
	DECQ CX
	JNZ vrow
	VZEROUPPER
	RET

// func lanesUpdateAVX(m, a, u, b, v *float64, rows, n int)
// m[r·n+c] += a[r]·u[c] + b[r]·v[c] for r < rows, c < n, every element a
// vector of four lanes: rowsUpdate with vectors in place of broadcasts.
TEXT ·lanesUpdateAVX(SB), NOSPLIT, $0-56
	MOVQ m+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ u+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ v+32(FP), AX
	MOVQ rows+40(FP), CX
	MOVQ n+48(FP), R8

urow:
	VMOVUPD (SI), Y2
	VMOVUPD (BX), Y3
	XORQ R10, R10
	MOVQ R8, R11

ucol:
	VMULPD (DX)(R10*1), Y2, Y0
	VMULPD (AX)(R10*1), Y3, Y1
	VADDPD Y1, Y0, Y0
	VADDPD (DI)(R10*1), Y0, Y0
	VMOVUPD Y0, (DI)(R10*1)
	ADDQ $32, R10
	DECQ R11
	JNZ ucol

	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ R10, DI
	DECQ CX
	JNZ urow
	VZEROUPPER
	RET

// The lanes kernels below work on vectors of four lanes, n of them.

// LANEGATHER loads in[idx[0..3]] (idx at DX, in at SI) into Y0, four
// scalar loads: faster than VGATHERQPD on the processors at hand.
#define LANEGATHER \
	MOVQ 0(DX), R10 \
	MOVQ 8(DX), R11 \
	VMOVSD (SI)(R10*8), X0 \
	VMOVHPD (SI)(R11*8), X0, X0 \
	MOVQ 16(DX), R10 \
	MOVQ 24(DX), R11 \
	VMOVSD (SI)(R10*8), X1 \
	VMOVHPD (SI)(R11*8), X1, X1 \
	VINSERTF128 $1, X1, Y0, Y0

// func lanesScaleAVX(x, in *float64, idx *int64, lo, sc *float64, mask *uint64, n int)
// x[e] = ((in[idx[e]] - lo[e]) * sc[e]) & mask[e]: a pack's inputs
// gathered from the feature row and scaled; the mask zeroes the inputs no
// lane has.
TEXT ·lanesScaleAVX(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ idx+16(FP), DX
	MOVQ lo+24(FP), BX
	MOVQ sc+32(FP), AX
	MOVQ mask+40(FP), R9
	MOVQ n+48(FP), CX

scloop:
	LANEGATHER
	VSUBPD (BX), Y0, Y0
	VMULPD (AX), Y0, Y0
	VANDPD (R9), Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, AX
	ADDQ $32, R9
	DECQ CX
	JNZ scloop
	VZEROUPPER
	RET

// func lanesWidenAVX(x, in *float64, idx *int64, lo, hi, sc *float64, mask *uint64, n int) (changed bool)
// Widens each input's range to the row's value (lo = min(lo, v), hi =
// max(hi, v), NaN leaving them as they are), recomputes the scales
// sc = 1/((hi - lo) + 1e-16) of a vector where a range changed (a
// division the rest are spared, as autoencoder.prepareStep rescales only
// what changed), and sets x as lanesScaleAVX does. Reports whether any range
// changed. The mask keeps the inputs no lane has at lo = hi = sc = x = 0.
TEXT ·lanesWidenAVX(SB), NOSPLIT, $0-65
	MOVQ x+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ idx+16(FP), DX
	MOVQ lo+24(FP), BX
	MOVQ hi+32(FP), R8
	MOVQ sc+40(FP), AX
	MOVQ mask+48(FP), R9
	MOVQ n+56(FP), CX
	VBROADCASTSD eps<>(SB), Y7
	VBROADCASTSD one<>(SB), Y8
	VXORPD Y6, Y6, Y6 // changed lanes

wdloop:
	LANEGATHER
	VMOVUPD (R9), Y5
	VANDPD Y5, Y0, Y0
	VMOVUPD (BX), Y2
	VMOVUPD (R8), Y3
	VMINPD Y2, Y0, Y1 // min(v, lo): lo where v is NaN or both are zero
	VMAXPD Y3, Y0, Y4 // max(v, hi): likewise hi
	VCMPPD $4, Y2, Y1, Y2 // lo changed (not equal)
	VCMPPD $4, Y3, Y4, Y3
	VORPD Y3, Y2, Y2 // this vector's changed lanes
	VORPD Y2, Y6, Y6
	VMOVUPD Y1, (BX)
	VMOVUPD Y4, (R8)
	VPTEST Y2, Y2
	JNZ wdrescale
	VMOVUPD (AX), Y2 // no range changed: the scales stand
	JMP wdscaled

wdrescale:
	VSUBPD Y1, Y4, Y2 // hi - lo
	VADDPD Y7, Y2, Y2
	VDIVPD Y2, Y8, Y2 // 1/(hi - lo + 1e-16)
	VANDPD Y5, Y2, Y2
	VMOVUPD Y2, (AX)

wdscaled:
	VSUBPD Y1, Y0, Y0 // (v - lo) * sc
	VMULPD Y2, Y0, Y0
	VANDPD Y5, Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, R8
	ADDQ $32, AX
	ADDQ $32, R9
	DECQ CX
	JNZ wdloop
	VMOVMSKPD Y6, AX
	TESTQ AX, AX
	SETNE changed+64(FP)
	VZEROUPPER
	RET

DATA one<>+0(SB)/8, $1.0
GLOBL one<>(SB), RODATA|NOPTR, $8

DATA eps<>+0(SB)/8, $1e-16
GLOBL eps<>(SB), RODATA|NOPTR, $8

// func lanesAndAVX(v *float64, mask *uint64, n int)
// v[e] &= mask[e]: zeroes the units no lane has.
TEXT ·lanesAndAVX(SB), NOSPLIT, $0-24
	MOVQ v+0(FP), DI
	MOVQ mask+8(FP), SI
	MOVQ n+16(FP), CX

andloop:
	VMOVUPD (DI), Y0
	VANDPD (SI), Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ andloop
	VZEROUPPER
	RET

// func lanesRMSEAVX(x, z *float64, n int, nv, out *[4]float64)
// out[l] = sqrt(Σ (x[e] - z[e])² / nv[l]), the sum in order over lane l's
// elements, from 0: each lane's RMSE.
TEXT ·lanesRMSEAVX(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), DI
	MOVQ z+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ nv+24(FP), AX
	MOVQ out+32(FP), DX
	VXORPD Y0, Y0, Y0

ssloop:
	VMOVUPD (DI), Y1
	VSUBPD (SI), Y1, Y1
	VMULPD Y1, Y1, Y1
	VADDPD Y1, Y0, Y0
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ ssloop
	VDIVPD (AX), Y0, Y0
	VSQRTPD Y0, Y0
	VMOVUPD Y0, (DX)
	VZEROUPPER
	RET

// func lanesStepAVX(d, lx, le, x, z, lr *float64, n int)
// d = x - z, lx = lr·x, le = lr·d, lr one vector for all n.
TEXT ·lanesStepAVX(SB), NOSPLIT, $0-56
	MOVQ d+0(FP), DI
	MOVQ lx+8(FP), R8
	MOVQ le+16(FP), R9
	MOVQ x+24(FP), SI
	MOVQ z+32(FP), DX
	MOVQ lr+40(FP), AX
	MOVQ n+48(FP), CX
	VMOVUPD (AX), Y3

stloop:
	VMOVUPD (SI), Y0
	VSUBPD (DX), Y0, Y1
	VMULPD Y3, Y0, Y0
	VMULPD Y3, Y1, Y2
	VMOVUPD Y1, (DI)
	VMOVUPD Y0, (R8)
	VMOVUPD Y2, (R9)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ stloop
	VZEROUPPER
	RET

// func lanesDerivAVX(lh, y *float64, n int)
// lh = lh·(y·(1 - y)): the hidden error through the sigmoid.
TEXT ·lanesDerivAVX(SB), NOSPLIT, $0-24
	MOVQ lh+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSD one<>(SB), Y3

dvloop:
	VMOVUPD (SI), Y0
	VSUBPD Y0, Y3, Y1
	VMULPD Y1, Y0, Y0
	VMULPD (DI), Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ dvloop
	VZEROUPPER
	RET

// func lanesBiasAVX(vb, le, hb, lh, lr *float64, nv, nh int)
// vb += le (nv vectors), then hb += lr·lh (nh vectors): the biases' step.
TEXT ·lanesBiasAVX(SB), NOSPLIT, $0-56
	MOVQ vb+0(FP), DI
	MOVQ le+8(FP), SI
	MOVQ hb+16(FP), R8
	MOVQ lh+24(FP), R9
	MOVQ lr+32(FP), AX
	MOVQ nv+40(FP), CX
	MOVQ nh+48(FP), DX
	VMOVUPD (AX), Y3

vbloop:
	VMOVUPD (DI), Y0
	VADDPD (SI), Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ vbloop

hbloop:
	VMULPD (R9), Y3, Y0
	VADDPD (R8), Y0, Y0
	VMOVUPD Y0, (R8)
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ DX
	JNZ hbloop
	VZEROUPPER
	RET

// func crossUpdateAVX(cross, r *float64, n int)
// cross[i·n+j] += r[i]·r[j] for i ≤ j < n: the upper triangle of the
// correlation's cross products, each row four at a time and its last few
// one by one.
TEXT ·crossUpdateAVX(SB), NOSPLIT, $0-24
	MOVQ cross+0(FP), DI
	MOVQ r+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, R9
	SHLQ $3, R9 // a row of cross, in bytes
	MOVQ SI, R8 // &r[i]
	MOVQ CX, R10 // n - i

xrow:
	VBROADCASTSD (R8), Y1
	MOVQ DI, R11 // &cross[i·n+i]
	MOVQ R8, R12 // &r[i]
	MOVQ R10, R13

xquad:
	CMPQ R13, $4
	JL xtail
	VMULPD (R12), Y1, Y0
	VADDPD (R11), Y0, Y0
	VMOVUPD Y0, (R11)
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $4, R13
	JMP xquad

xtail:
	TESTQ R13, R13
	JZ xnext
	VMULSD (R12), X1, X0
	VADDSD (R11), X0, X0
	VMOVSD X0, (R11)
	ADDQ $8, R11
	ADDQ $8, R12
	DECQ R13
	JMP xtail

xnext:
	ADDQ R9, DI
	ADDQ $8, DI // the next row starts one further right
	ADDQ $8, R8
	DECQ R10
	JNZ xrow
	VZEROUPPER
	RET

// func crossUpdate4AVX(cross, r *float64, n int)
// crossUpdateAVX for four vectors r[0:n], r[n:2n], r[2n:3n], r[3n:4n] in
// turn: each element of cross is loaded once, the four products added to
// it in order, and stored once, which is what four calls would compute
// with a quarter of the memory traffic (cross does not fit in L1).
TEXT ·crossUpdate4AVX(SB), NOSPLIT, $0-24
	MOVQ cross+0(FP), DI
	MOVQ r+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, R9
	SHLQ $3, R9 // a row, in bytes
	MOVQ SI, R8 // &r0[i]
	MOVQ CX, R10 // n - i

x4row:
	VBROADCASTSD (R8), Y1
	VBROADCASTSD (R8)(R9*1), Y2
	LEAQ (R8)(R9*2), AX
	VBROADCASTSD (AX), Y3
	VBROADCASTSD (AX)(R9*1), Y4
	MOVQ DI, R11 // &cross[i·n+i]
	MOVQ R8, R12 // &r0[j]
	LEAQ (R8)(R9*1), BX // &r1[j]
	LEAQ (R8)(R9*2), DX // &r2[j]
	LEAQ (DX)(R9*1), AX // &r3[j]
	MOVQ R10, R13

x4quad:
	CMPQ R13, $4
	JL x4tail
	VMOVUPD (R11), Y0
	VMULPD (R12), Y1, Y5
	VADDPD Y5, Y0, Y0
	VMULPD (BX), Y2, Y5
	VADDPD Y5, Y0, Y0
	VMULPD (DX), Y3, Y5
	VADDPD Y5, Y0, Y0
	VMULPD (AX), Y4, Y5
	VADDPD Y5, Y0, Y0
	VMOVUPD Y0, (R11)
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, BX
	ADDQ $32, DX
	ADDQ $32, AX
	SUBQ $4, R13
	JMP x4quad

x4tail:
	TESTQ R13, R13
	JZ x4next
	VMOVSD (R11), X0
	VMULSD (R12), X1, X5
	VADDSD X5, X0, X0
	VMULSD (BX), X2, X5
	VADDSD X5, X0, X0
	VMULSD (DX), X3, X5
	VADDSD X5, X0, X0
	VMULSD (AX), X4, X5
	VADDSD X5, X0, X0
	VMOVSD X0, (R11)
	ADDQ $8, R11
	ADDQ $8, R12
	ADDQ $8, BX
	ADDQ $8, DX
	ADDQ $8, AX
	DECQ R13
	JMP x4tail

x4next:
	ADDQ R9, DI
	ADDQ $8, DI
	ADDQ $8, R8
	DECQ R10
	JNZ x4row
	VZEROUPPER
	RET

// func prefetchLines(addrs *uintptr, n int)
// PREFETCHT0 of every nonzero address: a hint, which never faults.
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ addrs+0(FP), SI
	MOVQ n+8(FP), CX
	TESTQ CX, CX
	JZ pdone

ploop2:
	MOVQ (SI), AX
	PREFETCHT0 (AX)
	ADDQ $8, SI
	DECQ CX
	JNZ ploop2

pdone:
	RET
