package audit

import "math/big"

// rocaPrimes are the small primes of the ROCA fingerprint test (Nemec et
// al., "The Return of Coppersmith's Attack", CCS 2017): Infineon's RSALib
// made primes p = k·M + (65537^a mod M) with M a primorial, so a modulus
// it made is, modulo each of these primes, a power of 65537.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
	89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaSubgroups[i] has bit r set when r is a power of 65537 modulo
// rocaPrimes[i].
var rocaSubgroups = func() [][]bool {
	out := make([][]bool, len(rocaPrimes))
	for i, p := range rocaPrimes {
		in := make([]bool, p)
		g := 65537 % p
		for x := int64(1); !in[x]; x = x * g % p {
			in[x] = true
		}
		out[i] = in
	}
	return out
}()

// ROCAVulnerable reports whether the RSA modulus n has the ROCA
// fingerprint (CVE-2017-15361). A random modulus passes every residue test
// with negligible probability; a modulus from the vulnerable library always
// does.
func ROCAVulnerable(n *big.Int) bool {
	if n == nil || n.Sign() <= 0 {
		return false
	}
	var r, m big.Int
	for i, p := range rocaPrimes {
		m.SetInt64(p)
		r.Mod(n, &m)
		if !rocaSubgroups[i][r.Int64()] {
			return false
		}
	}
	return true
}
