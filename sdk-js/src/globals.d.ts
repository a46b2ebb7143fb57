// The globals of the JavaScript engine inside the component (StarlingMonkey,
// built without stdio, clocks, random, fetch and http) that connectors may
// use beyond ES2022. `console`, `fetch`, `Date.now` and `Math.random` are
// deliberately absent: use `log`, `http` and the values the host passes.
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string);
  decode(input?: Uint8Array): string;
}
