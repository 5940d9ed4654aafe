module nethttpcompare/closerace

go 1.19
