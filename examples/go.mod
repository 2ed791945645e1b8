module github.com/coalesce-go/coalesce/examples

go 1.26.0
