// A node:test reporter that writes one JSON line per test or suite that did not run (skip) or
// whose outcome does not count (todo); scripts/test.mjs fails the run on a skip and lists both.
// The built-in summary counts skipped tests only, so a skipped `describe` went unseen ("skipped 0").
export default async function* notRun(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, todo, name, file, details } = event.data;
    const skipped = skip !== undefined && skip !== false;
    if (!skipped && (todo === undefined || todo === false)) continue;
    const reason = skipped ? skip : todo;
    yield `${JSON.stringify({
      kind: skipped ? 'skip' : 'todo',
      what: details?.type === 'suite' ? 'suite' : 'test',
      name,
      file,
      reason: typeof reason === 'string' ? reason : '',
    })}\n`;
  }
}
