package client

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

func TestErrorUnwrap(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   error
	}{
		{503, "overloaded", coalesce.ErrOverloaded},
		{503, "too_many_waiters", coalesce.ErrOverloaded},
		{504, "timeout", coalesce.ErrTimeout},
		{504, "wait_exceeded", coalesce.ErrTimeout},
		{413, "input_too_large", coalesce.ErrInputTooLarge},
		{503, "shutting_down", coalesce.ErrClosed},
		{400, "bad_namespace", coalesce.ErrBadNamespace},
		{401, "unauthorized", ErrUnauthorized},
		{404, "not_found", ErrNotFound},
		{401, "", ErrUnauthorized},           // a proxy's 401
		{413, "", coalesce.ErrInputTooLarge}, // a proxy's 413
		{413, "batch_too_large", nil},        // the batch, not an input
		{502, "executor_failed", nil},
		{400, "bad_request", nil},
		{500, "tier_failed", nil},
	} {
		e := &Error{Status: tc.status, Code: tc.code, Message: "m"}
		if got := e.Unwrap(); got != tc.want {
			t.Errorf("%d %q: Unwrap = %v, want %v", tc.status, tc.code, got, tc.want)
		}
		if tc.want != nil && !errors.Is(e, tc.want) {
			t.Errorf("%d %q: errors.Is(%v) false", tc.status, tc.code, tc.want)
		}
	}
}

func TestResponseError(t *testing.T) {
	for _, tc := range []struct {
		status int
		header http.Header
		body   string
		want   Error
	}{
		{503, http.Header{"Retry-After": {"3"}}, `{"error":{"code":"overloaded","message":"full"}}` + "\n",
			Error{Status: 503, Code: "overloaded", Message: "full", RetryAfter: 3 * time.Second}},
		{502, nil, "<html>bad gateway</html>", Error{Status: 502, Message: "<html>bad gateway</html>"}},
		{500, nil, "", Error{Status: 500, Message: "Internal Server Error"}},
		{503, http.Header{"Retry-After": {"999999"}}, `{}`, Error{Status: 503, Message: "{}", RetryAfter: time.Minute}},
		{503, http.Header{"Retry-After": {"-1"}}, `x`, Error{Status: 503, Message: "x"}},
		{503, http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, `x`, Error{Status: 503, Message: "x"}},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		if got := responseError(resp); *got != tc.want {
			t.Errorf("status %d body %q: %+v, want %+v", tc.status, tc.body, *got, tc.want)
		}
	}
}
