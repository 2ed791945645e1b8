module github.com/coalesce-go/coalesce

go 1.26

require (
	github.com/minio/highwayhash v1.0.4
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sys v0.21.0 // indirect
