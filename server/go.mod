module github.com/coalesce-go/coalesce/server

go 1.26.0

require (
	github.com/coalesce-go/coalesce v0.0.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/minio/highwayhash v1.0.4 // indirect
	golang.org/x/sys v0.21.0 // indirect
)

replace github.com/coalesce-go/coalesce => ..
