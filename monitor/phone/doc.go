// Package phone holds tgsafety's one rule for what looks like a phone
// number. Phone numbers are secrets: they must not reach metric labels,
// logs, API answers or error messages. Account names, tags and every
// value an error message would repeat are checked with Like; values that
// must be phone numbers (an account's number in the configuration) are
// read with Digits.
//
// It imports nothing of ours, so that every package may use it: the
// monitor, its HTTP and YAML helpers, the test server and the commands.
package phone
