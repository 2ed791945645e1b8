module github.com/coalesce-go/coalesce/cluster

go 1.26.0

require github.com/coalesce-go/coalesce v0.0.0

replace github.com/coalesce-go/coalesce => ..
