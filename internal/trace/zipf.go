package trace

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Zipf draws ranks 1..n with probability proportional to 1/k^s. Unlike
// math/rand's Zipf, which needs s > 1, any s > 0 is allowed: the skews real
// caches see (0.6 to 1.2) straddle 1.
//
// It uses rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-
// inversion to generate variates from monotone discrete distributions",
// ACM TOMACS 6(3), 1996): O(1) memory and expected time per draw whatever n,
// where an inverse-CDF table would cost 8 bytes per key. A Zipf is not safe
// for concurrent use.
type Zipf struct {
	r           *rand.Rand
	s           float64
	n           float64
	hIntegralX1 float64
	hIntegralN  float64
	squeeze     float64
}

// NewZipf returns a Zipf over ranks 1..n with skew s, drawing from r. It
// fails unless s > 0 (and finite) and n >= 1.
func NewZipf(r *rand.Rand, s float64, n uint64) (*Zipf, error) {
	if !(s > 0) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("zipf skew %v is not allowed: it must be a positive number (typical: 0.6 to 1.2)", s)
	}
	if n < 1 {
		return nil, fmt.Errorf("zipf over %d keys is not allowed: it needs at least 1", n)
	}
	z := &Zipf{r: r, s: s, n: float64(n)}
	z.hIntegralX1 = z.hIntegral(1.5) - 1
	z.hIntegralN = z.hIntegral(z.n + 0.5)
	z.squeeze = 2 - z.hIntegralInverse(z.hIntegral(2.5)-z.h(2))
	return z, nil
}

// Uint64 returns the next rank, in [1, n]; rank 1 is the most frequent.
func (z *Zipf) Uint64() uint64 {
	for {
		u := z.hIntegralN + z.r.Float64()*(z.hIntegralX1-z.hIntegralN)
		x := z.hIntegralInverse(u)
		k := math.Floor(x + 0.5)
		if k < 1 {
			k = 1
		} else if k > z.n {
			k = z.n
		}
		// The squeeze accepts most draws without evaluating hIntegral.
		if k-x <= z.squeeze || u >= z.hIntegral(k+0.5)-z.h(k) {
			return uint64(k)
		}
	}
}

// h is the unnormalized density x^-s.
func (z *Zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

// hIntegral is an antiderivative of h, (x^(1-s) - 1)/(1-s), written so that
// it stays accurate as s approaches 1, where it tends to log(x).
func (z *Zipf) hIntegral(x float64) float64 {
	logX := math.Log(x)
	return expm1OverX((1-z.s)*logX) * logX
}

func (z *Zipf) hIntegralInverse(x float64) float64 {
	t := x * (1 - z.s)
	if t < -1 {
		// Rounding can push t just below the domain of log1p.
		t = -1
	}
	return math.Exp(log1pOverX(t) * x)
}

// log1pOverX is log(1+x)/x, continuous at 0.
func log1pOverX(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3.0-0.25*x))
}

// expm1OverX is (e^x - 1)/x, continuous at 0.
func expm1OverX(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x/3*(1+0.25*x))
}
