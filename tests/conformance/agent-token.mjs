// Preloaded into the MCP conformance suite (node --import) to make it an agent of the gateway: the
// suite has no option for request headers, so this adds `Authorization: Bearer $AGW_CONFORMANCE_BEARER`
// to every HTTP request the process sends. It does so in the HTTP client's global dispatcher, which
// both the global fetch (the MCP SDK's transport) and undici's request (the DNS-rebinding scenario)
// go through, and so below what the suite records: the token never appears in its result files.
import { Agent, setGlobalDispatcher } from 'undici';

const token = process.env.AGW_CONFORMANCE_BEARER;
if (!token) {
  throw new Error('agent-token.mjs: AGW_CONFORMANCE_BEARER is not set');
}

const authorization = `Bearer ${token}`;

// Request headers reach a dispatcher as an object, a flat [name, value, …] array or an iterable
// of pairs, depending on the caller; a caller's own Authorization is left alone.
function withAuthorization(headers) {
  if (headers == null) {
    return { authorization };
  }

  if (Array.isArray(headers) && (headers.length === 0 || !Array.isArray(headers[0]))) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'authorization') {
        return headers;
      }
    }

    return [...headers, 'authorization', authorization];
  }

  const pairs = typeof headers[Symbol.iterator] === 'function' ? [...headers] : Object.entries(headers);
  if (pairs.some(([name]) => String(name).toLowerCase() === 'authorization')) {
    return headers;
  }

  return [...pairs.flat(), 'authorization', authorization];
}

const bearer = (dispatch) => (options, handler) => dispatch({ ...options, headers: withAuthorization(options.headers) }, handler);

setGlobalDispatcher(new Agent().compose(bearer));
