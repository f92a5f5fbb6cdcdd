using AgentGateway.Credentials;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Upstream;

/// <summary>
/// Hop credentials that are a signature over the request (<see cref="IRequestSigner"/>, e.g. AWS
/// Signature Version 4) are applied by <see cref="Handler"/>, the innermost handler of every
/// cluster's client, to the request exactly as it is sent — after every transform, with the URL,
/// host and body that go on the wire. The injection point only marks the request for it, and first
/// reads the body the signer covers, so that a body too large to sign is refused before anything
/// is forwarded.
/// </summary>
internal static class RequestSigning
{
    private static readonly HttpRequestOptionsKey<IRequestSigner> SignerKey = new("AgentGateway.RequestSigner");

    /// <summary>Marks the outgoing request for <paramref name="signer"/>. When the signer covers the
    /// body, the body is read here (at most its limit) and handed to the forwarder from memory, so
    /// the bytes signed are the bytes sent.</summary>
    /// <returns>A refusal when the body is larger than the signer signs; otherwise null.</returns>
    public static async ValueTask<Refusal?> PrepareAsync(RequestTransformContext context, IRequestSigner signer, string credentialName, string routeId)
    {
        if (signer.MaxBodyBytes is { } max && context.ProxyRequest.Content is not null)
        {
            var request = context.HttpContext.Request;
            if (request.ContentLength > max)
            {
                return TooLarge(max, credentialName);
            }

            using var buffer = new BoundedBuffer(max);
            try
            {
                await request.Body.CopyToAsync(buffer, context.CancellationToken);
            }
            catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return Refusal.BodyTooLarge($"the body is larger than route '{routeId}' accepts (MaxRequestBodySize)");
            }
            catch (IOException) when (buffer.Exceeded)
            {
                return TooLarge(max, credentialName);
            }

            request.Body = new MemoryStream(buffer.GetBuffer(), 0, (int)buffer.Length, writable: false);
        }

        context.ProxyRequest.Options.Set(SignerKey, signer);
        return null;
    }

    private static Refusal TooLarge(long max, string credentialName) =>
        Refusal.BodyTooLarge($"the body is larger than the {max} bytes credential '{credentialName}' signs (MaxBodyBytes)");

    /// <summary>Signs requests marked by <see cref="PrepareAsync"/>; passes the others as they are.</summary>
    internal sealed class Handler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        /// <remarks>Not async itself: a request nobody marked (every route without a signing
        /// credential) is passed on with no state machine of this handler's around it.</remarks>
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            request.Options.TryGetValue(SignerKey, out var signer) ? SignAndSendAsync(request, signer, cancellationToken) : base.SendAsync(request, cancellationToken);

        private async Task<HttpResponseMessage> SignAndSendAsync(HttpRequestMessage request, IRequestSigner signer, CancellationToken cancellationToken)
        {
            byte[] body = [];
            if (signer.MaxBodyBytes is { } max && request.Content is { } content)
            {
                // The content as built for sending (the forwarder's copy of the agent's body, or
                // whatever a transform put there), read once and sent from memory with its headers.
                using var buffer = new BoundedBuffer(max);
                await content.CopyToAsync(buffer, cancellationToken);
                if (buffer.Exceeded)
                {
                    throw new RequestNotSignableException($"the body is larger than the {max} bytes the credential signs");
                }

                body = buffer.ToArray();
                var sent = new ByteArrayContent(body);
                foreach (var header in content.Headers.NonValidated)
                {
                    sent.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }

                sent.Headers.ContentLength = body.Length;
                request.Content = sent;
            }

            if (signer.Sign(request, body) is { } error)
            {
                // Nothing unsigned is sent in its place: fail closed.
                throw new RequestNotSignableException(error);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>A memory stream that refuses to grow past a limit (and says so).</summary>
    private sealed class BoundedBuffer(long max) : MemoryStream
    {
        public bool Exceeded { get; private set; }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Check(count);
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Check(buffer.Length);
            base.Write(buffer);
        }

        public override void WriteByte(byte value)
        {
            Check(1);
            base.WriteByte(value);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Check(count);
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Check(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }

        private void Check(int count)
        {
            if (Length + count > max)
            {
                Exceeded = true;
                throw new IOException("the body is larger than the signer's limit");
            }
        }
    }
}

/// <summary>The request cannot be signed as it is (its body is too large, or its path would be read
/// differently by the service than it was signed); its message is safe to show the agent. Nothing
/// is sent.</summary>
internal sealed class RequestNotSignableException(string message) : HttpRequestException(message);
