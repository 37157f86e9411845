package sentry

// RequestCounts returns the cumulative requests sent and 429 answers
// received (shared with WithBaseURL copies): the numbers a run summary
// reports the change of.
func (c *Client) RequestCounts() (requests, rateLimited int64) {
	return c.metrics.requests.Load(), c.metrics.rateLimited.Load()
}
