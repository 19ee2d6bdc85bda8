package conformance

var basicCases = []testCase{}
