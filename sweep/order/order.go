// Package order decides in which order a sweep probes its hitlist and which
// sender probes what. The order is a pseudo-random permutation, walked as a
// cyclic group as zmap does, so that consecutive probes land in unrelated
// networks and no network sees a burst, at no memory cost beyond the list.
package order

import (
	"fmt"
	"math/big"
	"math/rand/v2"
)

// Perm is a permutation of 0..n-1: the walk x -> x*g mod p through the
// multiplicative group of integers modulo a prime p > n, from a random
// start, with a random generator g, skipping the values above n.
type Perm struct {
	n, p, g, start uint64
}

// Seed makes a permutation reproducible; sweeps draw it at random.
type Seed [32]byte

// NewPerm returns a permutation of 0..n-1 chosen by seed. n must be below
// 2^32 (a hitlist of IPv4 /24s has at most 2^24).
func NewPerm(n uint64, seed Seed) (*Perm, error) {
	if n >= 1<<32 {
		return nil, fmt.Errorf("order: %d targets: at most 2^32", n)
	}
	r := rand.New(rand.NewChaCha8(seed))
	// The smallest prime above n keeps the walk's wasted steps below the
	// gap between primes: a few hundred at most at this size.
	p := n + 1
	for p < 3 || !big.NewInt(int64(p)).ProbablyPrime(20) {
		p++
	}
	factors := primeFactors(p - 1)
	g := uint64(0)
	for g == 0 {
		c := 2 + r.Uint64N(p-2) // in 2..p-1
		if generates(c, p, factors) {
			g = c
		}
	}
	return &Perm{n: n, p: p, g: g, start: 1 + r.Uint64N(p-1)}, nil
}

// Len is n.
func (pm *Perm) Len() uint64 { return pm.n }

// All yields each of 0..n-1 once, in the permutation's order.
func (pm *Perm) All(yield func(uint64) bool) {
	x := pm.start
	for range pm.p - 1 {
		if x <= pm.n {
			if !yield(x - 1) {
				return
			}
		}
		x = x * pm.g % pm.p
	}
}

// generates reports whether g generates the whole group mod p, whose
// order p-1 has the given prime factors.
func generates(g, p uint64, factors []uint64) bool {
	for _, q := range factors {
		if powmod(g, (p-1)/q, p) == 1 {
			return false
		}
	}
	return true
}

func powmod(b, e, m uint64) uint64 {
	r := uint64(1)
	b %= m
	for ; e > 0; e >>= 1 {
		if e&1 == 1 {
			r = r * b % m
		}
		b = b * b % m
	}
	return r
}

// primeFactors returns the distinct prime factors of n, by trial division
// (n < 2^32 here, so the square root is below 2^16).
func primeFactors(n uint64) []uint64 {
	var fs []uint64
	for q := uint64(2); q*q <= n; q++ {
		if n%q == 0 {
			fs = append(fs, q)
			for n%q == 0 {
				n /= q
			}
		}
	}
	if n > 1 {
		fs = append(fs, n)
	}
	return fs
}

// Split permutes targets and deals them out to k senders in turn, so that
// each target goes to exactly one sender and each sender's share is in
// random order too. Shares differ in length by at most one.
func Split(targets []uint32, k int, seed Seed) ([][]uint32, error) {
	if k < 1 {
		return nil, fmt.Errorf("order: %d senders: at least one", k)
	}
	pm, err := NewPerm(uint64(len(targets)), seed)
	if err != nil {
		return nil, err
	}
	shares := make([][]uint32, k)
	for j := range shares {
		shares[j] = make([]uint32, 0, len(targets)/k+1)
	}
	i := 0
	for x := range pm.All {
		shares[i%k] = append(shares[i%k], targets[x])
		i++
	}
	return shares, nil
}
