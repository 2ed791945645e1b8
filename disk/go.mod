module github.com/coalesce-go/coalesce/disk

go 1.26.0

require github.com/coalesce-go/coalesce v0.0.0

replace github.com/coalesce-go/coalesce => ..
