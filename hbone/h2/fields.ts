// The header lists of CONNECT requests and their responses as the own engine hands them
// over: a name → value map (repeated names joined with ", "), or the reason the list is
// malformed (RFC 9113 §8.1.1, §8.2, §8.3, §8.5), which the session answers with
// RST_STREAM(PROTOCOL_ERROR). Pseudo-headers first, known ones only, once each; names in
// lower case; no connection-specific fields; no NUL, CR or LF in values.
import type { HeaderField } from './hpack.js';

export type HeaderMap = Record<string, string>;

const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path']);

/** A request's fields as a header map, or why it is malformed (§8.1.1, §8.3.1, §8.5). */
export function requestHeaders(fields: HeaderField[]): HeaderMap | string {
  const map = headerMap(fields, REQUEST_PSEUDO);
  if (typeof map === 'string') return map;
  const method = map[':method'];
  if (method === undefined) return 'no :method';
  if (method === 'CONNECT') {
    if (map[':authority'] === undefined) return 'CONNECT without :authority';
    if (map[':scheme'] !== undefined || map[':path'] !== undefined)
      return 'CONNECT with :scheme or :path';
  } else if (map[':scheme'] === undefined || map[':path'] === undefined) {
    return `${method} without :scheme or :path`;
  }
  return map;
}

export function responseHeaders(fields: HeaderField[]): HeaderMap | string {
  const map = headerMap(fields, new Set([':status']));
  if (typeof map === 'string') return map;
  const status = map[':status'];
  if (status === undefined || !/^[1-9][0-9]{2}$/.test(status)) return 'no valid :status';
  return map;
}

function headerMap(fields: HeaderField[], pseudo: ReadonlySet<string>): HeaderMap | string {
  const map: HeaderMap = {};
  let regular = false;
  for (const [name, value] of fields) {
    if (name.startsWith(':')) {
      if (regular) return `${name} after a regular header`;
      if (!pseudo.has(name)) return `pseudo-header ${name}`;
      if (map[name] !== undefined) return `${name} twice`;
      map[name] = value;
      continue;
    }
    regular = true;
    if (name.length === 0 || name !== name.toLowerCase())
      return `header name ${JSON.stringify(name)}`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
    if (name === 'te' && value !== 'trailers') return 'te other than trailers';
    if (/[\0\r\n]/.test(value)) return `header ${name} with NUL, CR or LF`;
    const prev = map[name];
    map[name] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return map;
}
