// IP:port addresses as HBONE carries them in `:authority` (`10.0.0.5:8080`,
// `[fd00::5]:8080`): the vocabulary of lib/address.ts. Only IP literals: HBONE targets are
// workload addresses, never names, so a name is a bad request rather than something to
// resolve. IPs are canonical (IPv4-mapped IPv6 folded to IPv4) so that comparing two
// addresses is comparing two strings.
export {
  formatAddr as formatSocketAddr,
  parseSocketAddr,
  type SocketAddr,
  socketAddr,
} from '../lib/address.js';
export { canonicalIp } from '../lib/ip.js';
