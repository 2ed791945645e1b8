package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coalesce-go/coalesce"
)

// Namespace returns a Client that sends its requests in namespace name and
// version version of the computation ("" for the default namespace, and
// for the daemon's --version), as Options.Namespace and Options.Version
// say. It shares c's token, batch size and connections (Close on either
// closes the idle ones), so that a caller serving many tenants makes one
// Client with New and one of these per tenant, for the cost of a small
// struct.
func (c *Client) Namespace(name, version string) (*Client, error) {
	if err := checkScope("the namespace", name, "the version", version); err != nil {
		return nil, err
	}
	n := *c
	n.ns, n.version = name, version
	return &n, nil
}

// checkScope refuses a namespace or version that cannot travel in a
// header. The rest of the daemon's rules (printable ASCII without spaces,
// 128 bytes at most) are the daemon's to apply: it answers bad_namespace.
func checkScope(nsWhat, ns, vWhat, version string) error {
	for _, f := range [...]struct{ what, v string }{{nsWhat, ns}, {vWhat, version}} {
		if i := strings.IndexFunc(f.v, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
			return fmt.Errorf("client: %s %q has a control character at byte %d; the daemon allows printable ASCII without spaces: %w", f.what, f.v, i, coalesce.ErrBadNamespace)
		}
	}
	return nil
}

// scope names the Client's namespace and version in a request that the
// daemon serves in one: a compute, a batch, or a result's poll.
func (c *Client) scope(req *http.Request) {
	if c.ns != "" {
		req.Header["Coalesce-Namespace"] = []string{c.ns}
	}
	if c.version != "" {
		req.Header["Coalesce-Version"] = []string{c.version}
	}
}

// DeleteNamespace deletes the results of namespace name ("" for the
// default one): of every version if version is "", else of that version
// only. The daemon stops serving them from its memory at once and deletes
// them from its disk tier; it returns how many it deleted from the disk
// and from Redis (0 for a daemon with neither). It names the namespace in its arguments,
// whatever the Client's own.
//
// A daemon run with --redis also deletes them from Redis and tells the
// other daemons to forget theirs (a daemon disconnected from Redis at that
// moment keeps its copies until evicted); a computation running meanwhile
// still delivers and stores its result. An *Error with code tier_failed
// (HTTP 500) means the memory forgot them but the disk or Redis failed to
// delete them: call again.
func (c *Client) DeleteNamespace(ctx context.Context, name, version string) (int64, error) {
	if name == "_" {
		// The daemon reads "_" in the path as the default namespace.
		return 0, fmt.Errorf(`client: DeleteNamespace: the daemon reads the name "_" as the default namespace; a namespace named "_" cannot be deleted over HTTP: %w`, coalesce.ErrBadNamespace)
	}
	if err := checkScope("the namespace", name, "the version", version); err != nil {
		return 0, err
	}
	seg := "_"
	if name != "" {
		// A "." or ".." segment would be cleaned away by the daemon's
		// router: escape dots too.
		seg = strings.ReplaceAll(url.PathEscape(name), ".", "%2E")
	}
	path := "/v1/namespaces/" + seg
	if version != "" {
		path += "?version=" + url.QueryEscape(version)
	}
	req, err := c.request(ctx, http.MethodDelete, path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, unexpected(resp)
	}
	var body struct {
		Deleted *int64 `json:"deleted"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&body); err != nil {
		return 0, fmt.Errorf("client: decoding the answer of DELETE %s: %w", path, err)
	}
	if body.Deleted == nil {
		return 0, fmt.Errorf("client: the answer of DELETE %s has no \"deleted\" count; is the base URL a coalesce daemon?", path)
	}
	return *body.Deleted, nil
}
