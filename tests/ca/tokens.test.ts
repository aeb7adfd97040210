import t from 'tap';
import { NodeTokens, sha256 } from '../../ca/tokens.js';

t.test('maps tokens and sha256 digests to nodes', async (t) => {
  const digest = sha256('second-node-token-xyz').toString('hex');
  const tokens = NodeTokens.fromYaml(
    `- {node: node-a, token: first-node-token-abc}\n- {node: node-b, sha256: ${digest}}\n`,
    'tokens.yaml',
  );
  t.equal(tokens.size, 2);
  t.equal(tokens.nodeFor('first-node-token-abc'), 'node-a');
  t.equal(tokens.nodeFor('second-node-token-xyz'), 'node-b', 'matched through its digest');
  t.equal(tokens.nodeFor('first-node-token-ab'), undefined, 'a prefix is not a match');
  t.equal(tokens.nodeFor(''), undefined);
});

const bad: [string, RegExp][] = [
  ['node: a\ntoken: b\n', /tokens\.yaml: \(document\): .*expected a list/],
  ['- {node: a, token: short}\n', /\[0\]\.token|expected a list/],
  ['- {node: a, sha256: abc}\n', /expected a list|64 hex/],
  ['- {node: a, token: aaaaaaaaaaaaaaaaaaaa, extra: 1}\n', /\[0\]/],
  [
    '- {node: a, token: aaaaaaaaaaaaaaaaaaaa}\n- {node: b, token: aaaaaaaaaaaaaaaaaaaa}\n',
    /the same token is listed twice/,
  ],
  ['- {node: a, token: [\n', /YAML syntax/],
];
for (const [text, why] of bad) {
  t.test(`rejects ${JSON.stringify(text)}`, async (t) => {
    t.throws(() => NodeTokens.fromYaml(text, 'tokens.yaml'), why);
  });
}
