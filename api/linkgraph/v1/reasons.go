package linkgraphv1

// ErrorReasonRobotsDisallowed is the PageResult.error_reason of the result
// a frontier records, without fetching, for a page it was to revisit and
// robots.txt now disallows: the page's links are then lost for that reason.
const ErrorReasonRobotsDisallowed = "robots_disallowed"

// ErrorReasonPrivateAddress is the PageResult.error_reason of a fetch the
// worker's guard refused before connecting, because the host is or
// resolves to a loopback, private or link-local address and private
// networks are not allowed. The refusal is the worker's setting, not the
// page's state, so a shard records no fetch for it and its links stay as
// they were.
const ErrorReasonPrivateAddress = "private_address"

// ErrorReasonAbandoned is the PageResult.error_reason of a fetch task that
// was delivered to workers more often than they may take it without a
// result (crawler.WorkerConfig.MaxDeliveries): each one crashed, hung or
// could not publish. The worker reports it instead of fetching it again,
// so that the page is not lost: a new page is recorded as failed, and a
// page already indexed keeps its record, links and revisit.
const ErrorReasonAbandoned = "abandoned"
