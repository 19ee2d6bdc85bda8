package conformance

// hazardCases are the io_uring-era hazards every transport must survive.
var hazardCases = []testCase{}
