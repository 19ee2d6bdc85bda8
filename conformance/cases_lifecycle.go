package conformance

var lifecycleCases = []testCase{}
