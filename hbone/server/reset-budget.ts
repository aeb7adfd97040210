// The budget for streams the client cancels before the server answered them: each costs
// the server a handler call and perhaps an upstream connect, for nothing. Legitimate
// clients cancel rarely (open timeouts, apps that give up); a rapid-reset flood drains
// the bucket at once. A plain token bucket, `new ResetBudget(burst, perSecond)`.
export { TokenBucket as ResetBudget } from '../../lib/token-bucket.js';
