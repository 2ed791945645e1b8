module github.com/coalesce-go/coalesce/bench

go 1.26.0

require (
	github.com/VictoriaMetrics/fastcache v1.13.2
	github.com/coalesce-go/coalesce v0.0.0
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/maypok86/otter/v2 v2.4.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/golang/snappy v1.0.0 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	golang.org/x/sys v0.34.0 // indirect
)

replace github.com/coalesce-go/coalesce => ..
