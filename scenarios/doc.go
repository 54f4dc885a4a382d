// Package scenarios will hold the scripted behaviour scenarios and their
// Ginkgo suite (issue: scenarios). It is empty until then.
package scenarios
