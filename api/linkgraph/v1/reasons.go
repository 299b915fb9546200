package linkgraphv1

// ErrorReasonRobotsDisallowed is the PageResult.error_reason of the result
// a frontier records, without fetching, for a page it was to revisit and
// robots.txt now disallows: the page's links are then lost for that reason.
const ErrorReasonRobotsDisallowed = "robots_disallowed"
