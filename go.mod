module github.com/coalesce-go/coalesce

go 1.26

require (
	github.com/dchest/siphash v1.2.3 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
