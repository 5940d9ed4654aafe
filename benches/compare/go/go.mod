module nethttpcompare/go

go 1.19
