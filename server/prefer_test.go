package server

import (
	"net/http"
	"testing"
	"time"
)

func TestParsePrefer(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    preferences
	}{
		{nil, preferences{}},
		{[]string{"respond-async"}, preferences{async: true}},
		{[]string{"Respond-Async, wait=10"}, preferences{async: true, wait: 10 * time.Second}},
		{[]string{"wait=5", "wait=7"}, preferences{wait: 5 * time.Second}},
		{[]string{`wait="3"`}, preferences{wait: 3 * time.Second}},
		{[]string{"wait=3; foo=bar, respond-async"}, preferences{async: true, wait: 3 * time.Second}},
		{[]string{"wait=-1"}, preferences{}},
		{[]string{"wait=+1"}, preferences{}},
		{[]string{"wait=1.5"}, preferences{}},
		{[]string{"wait=99999999999999"}, preferences{}},
		{[]string{"wait"}, preferences{}},
		{[]string{`handling="a,b", respond-async`}, preferences{async: true}},
		{[]string{`x="unterminated, respond-async`}, preferences{}},
		{[]string{",,, ,respond-async,,"}, preferences{async: true}},
		{[]string{"return=minimal"}, preferences{}},
	} {
		h := http.Header{}
		for _, v := range tc.headers {
			h.Add("Prefer", v)
		}
		if got := parsePrefer(h); got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.headers, got, tc.want)
		}
	}
}

func FuzzParsePrefer(f *testing.F) {
	for _, s := range []string{"respond-async, wait=10", `wait="3"; x=y`, `a="\"", b`, "wait=4294967296", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{}
		h.Add("Prefer", s)
		p := parsePrefer(h)
		if p.wait < 0 || p.wait > (1<<32)*time.Second {
			t.Fatalf("wait %v out of range", p.wait)
		}
	})
}
