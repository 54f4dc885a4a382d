// Package timeline lays out the status page's account timeline: a band of
// the account's states and a line of its risk over a window, with time
// and risk axes, as coordinates for an inline SVG. It is pure layout, no
// HTML: the page's template draws what Draw returns, and tests check the
// geometry without parsing markup.
package timeline
