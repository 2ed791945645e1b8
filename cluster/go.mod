module github.com/coalesce-go/coalesce/cluster

go 1.26.0

require (
	github.com/coalesce-go/coalesce v0.0.0
	github.com/redis/rueidis v1.0.79
)

require (
	github.com/minio/highwayhash v1.0.4 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/coalesce-go/coalesce => ..
