package conformance

var bufferCases = []testCase{}
