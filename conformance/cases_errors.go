package conformance

var errorCases = []testCase{}
