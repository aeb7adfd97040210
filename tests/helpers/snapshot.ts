// A mesh snapshot from YAML text, for the table tests of pure decisions (route, SOCKS5
// source): the same conversion as the file source, without files.
import { parseAllDocuments } from 'yaml';
import { convertDocuments } from '../../mesh/convert/index.js';
import { MeshSnapshot } from '../../mesh/snapshot.js';

export function snapshotFromYaml(yaml: string): MeshSnapshot {
  const docs = parseAllDocuments(yaml).map((d, i) => ({
    doc: d.toJS(),
    origin: { source: 'test', document: i },
  }));
  return new MeshSnapshot(convertDocuments(docs, { clusterDomain: 'cluster.local' }), 1);
}
