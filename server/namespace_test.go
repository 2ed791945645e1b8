package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coalesce-go/coalesce"
)

func TestNamespaceAndVersionHeaders(t *testing.T) {
	ts, g := newTestServer(t, &testFunc{}, coalesce.Options{Workers: 1, Version: "v1"}, Config{})
	key := func(resp *http.Response) string { return resp.Header.Get(headerKey) }

	r1, b1 := post(t, ts.URL+"/v1/compute", "abc")
	r2, b2 := post(t, ts.URL+"/v1/compute", "abc", headerNamespace, "tenant-a")
	r3, b3 := post(t, ts.URL+"/v1/compute", "abc", headerNamespace, "tenant-a", headerVersion, "v2")
	for _, b := range []string{b1, b2, b3} {
		if b != "ABC" {
			t.Fatalf("body %q; want ABC", b)
		}
	}
	if key(r1) == key(r2) || key(r2) == key(r3) || key(r1) == key(r3) {
		t.Fatalf("keys %s %s %s: want one per namespace and version", key(r1), key(r2), key(r3))
	}
	if st := g.Stats(); st.Computed != 3 {
		t.Fatalf("Computed %d; want 3 (one per namespace and version)", st.Computed)
	}
	r4, _ := post(t, ts.URL+"/v1/compute", "abc", headerNamespace, "tenant-a", headerVersion, "v1")
	if r4.Header.Get(headerSource) != "hit" || key(r4) != key(r2) {
		t.Fatalf("the default version named explicitly: %s %s; want the hit of %s", r4.Header.Get(headerSource), key(r4), key(r2))
	}

	// A result by key is found in its own namespace only.
	get := func(k string, header ...string) int {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/results/"+k, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(key(r2), headerNamespace, "tenant-a"); c != 200 {
		t.Errorf("GET by key in its namespace: %d", c)
	}
	if c := get(key(r2)); c != 404 {
		t.Errorf("GET by key in the default namespace: %d; want 404", c)
	}

	for _, bad := range [][]string{
		{headerNamespace, "has space"},
		{headerVersion, strings.Repeat("v", coalesce.LimitNameLength+1)},
	} {
		resp, body := post(t, ts.URL+"/v1/compute", "abc", bad...)
		if resp.StatusCode != 400 || !strings.Contains(body, `"bad_namespace"`) {
			t.Errorf("%v: %d %s; want 400 bad_namespace", bad, resp.StatusCode, body)
		}
	}
	resp, body := post(t, ts.URL+"/v1/compute", "abc", headerNamespace, "a", headerNamespace, "b")
	if resp.StatusCode != 400 || !strings.Contains(body, "at most once") {
		t.Errorf("two namespaces: %d %s; want 400", resp.StatusCode, body)
	}
}

func TestReadyzReportsFailingChecks(t *testing.T) {
	var failing error
	ts, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{Checks: map[string]func() error{
		"disk": func() error { return failing },
	}})
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, b := get("/readyz"); c != 200 || b != "ready\n" {
		t.Fatalf("/readyz: %d %q", c, b)
	}
	if _, b := get("/metrics"); !strings.Contains(b, `coalesce_check_ok{check="disk"} 1`) {
		t.Fatal("/metrics lacks coalesce_check_ok 1")
	}
	failing = errors.New("writing: no space left on device")
	if c, b := get("/readyz"); c != 200 || !strings.Contains(b, "degraded") || !strings.Contains(b, "disk: writing: no space left on device") {
		t.Fatalf("/readyz with a failing check: %d %q", c, b)
	}
	if _, b := get("/metrics"); !strings.Contains(b, `coalesce_check_ok{check="disk"} 0`) {
		t.Fatal("/metrics lacks coalesce_check_ok 0")
	}
}
