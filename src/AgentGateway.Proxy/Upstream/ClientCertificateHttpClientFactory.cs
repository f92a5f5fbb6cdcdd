using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using AgentGateway.Credentials.Certificates;
using AgentGateway.Proxy.Configuration;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace AgentGateway.Proxy.Upstream;

/// <summary>
/// YARP's per-cluster HTTP client, plus mutual TLS for clusters whose metadata names a
/// <c>ClientCertificate</c> credential. The client is built once per cluster (not per request).
/// Its handler checks, per request, which certificate the serving revision's source holds; when a
/// rotation or a reload changes it, new requests go through a new connection pool built for the
/// new certificate. (A TLS client reuses its SSL context, and with it the certificate, across
/// connections, so a selection callback alone would keep presenting the old one.)
/// </summary>
internal sealed partial class ClientCertificateHttpClientFactory(
    GatewayConfigProvider config, TimeProvider time, ILogger<ForwarderHttpClientFactory> yarpLogger, ILogger<ClientCertificateHttpClientFactory> logger)
    : IForwarderHttpClientFactory
{
    public const string ClusterMetadataKey = "ClientCertificate";

    private readonly YarpClients _yarp = new(yarpLogger);
    private readonly ILogger _logger = logger;
    private readonly TimeProvider _time = time;

    /// <summary>A pool replaced by a rotation is disposed this long after, when requests that were
    /// in flight on it have long finished.</summary>
    private static readonly TimeSpan RetiredPoolLifetime = TimeSpan.FromMinutes(5);

    public HttpMessageInvoker CreateClient(ForwarderHttpClientContext context)
    {
        if (CertificateName(context.NewMetadata) is not { } name)
        {
            return _yarp.CreateClient(context);
        }

        if (_yarp.CanReuse(context))
        {
            return context.OldClient!;
        }

        return new HttpMessageInvoker(new RotatingHandler(this, context, name), disposeHandler: true);
    }

    private static string? CertificateName(IReadOnlyDictionary<string, string>? metadata) =>
        metadata is not null && metadata.TryGetValue(ClusterMetadataKey, out var name) && !string.IsNullOrEmpty(name) ? name : null;

    private ClientCertificateSource? Source(string name) =>
        config.Current.Credentials.TryGet(name, out var source) ? source as ClientCertificateSource : null;

    /// <summary>A connection pool presenting <paramref name="certificate"/>, with YARP's settings for the cluster.</summary>
    private HttpMessageInvoker BuildPool(ForwarderHttpClientContext context, ClientCertificateSource source, ClientCertificate certificate)
    {
        var handler = new SocketsHttpHandler();
        _yarp.Configure(context, handler);
        handler.SslOptions.ClientCertificateContext = certificate.Context;
        handler.SslOptions.LocalCertificateSelectionCallback = null;
        var authorities = source.ServerCertificateAuthorities;
        handler.SslOptions.RemoteCertificateValidationCallback = (_, server, _, errors) => ValidateServer(authorities, server, errors);
        Log.PoolBuilt(_logger, context.ClusterId, source.Name, certificate.Certificate.Subject, certificate.Fingerprint);
        return new HttpMessageInvoker(_yarp.Wrap(context, handler), disposeHandler: true);
    }

    /// <summary>With a configured CA bundle, the server's certificate must chain to it and nothing
    /// else (no fallback to the system store) and match the host name; otherwise the system's rules.</summary>
    private static bool ValidateServer(X509Certificate2Collection? authorities, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (authorities is null)
        {
            return errors == SslPolicyErrors.None;
        }

        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1"));
        if (certificate is X509Certificate2 server)
        {
            return chain.Build(server);
        }

        using var copy = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(copy);
    }

    /// <summary>Sends through the pool built for the certificate the source holds now.</summary>
    private sealed class RotatingHandler(ClientCertificateHttpClientFactory factory, ForwarderHttpClientContext context, string name) : HttpMessageHandler
    {
        private readonly Lock _swap = new();
        private (ClientCertificate Certificate, HttpMessageInvoker Pool)? _current;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            // The loader guarantees the name resolves in every revision that routes here; if it
            // ever did not, nothing is sent: fail closed.
            if (factory.Source(name) is not { } source)
            {
                Log.CertificateMissing(factory._logger, context.ClusterId, name);
                throw new HttpRequestException($"cluster '{context.ClusterId}' has no client certificate '{name}'");
            }

            var certificate = source.Current;
            var current = _current;
            if (current is null || !ReferenceEquals(current.Value.Certificate, certificate))
            {
                current = Swap(source, certificate);
            }

            return current.Value.Pool.SendAsync(request, cancellationToken);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _current?.Pool.Dispose();
            }

            base.Dispose(disposing);
        }

        private (ClientCertificate, HttpMessageInvoker) Swap(ClientCertificateSource source, ClientCertificate certificate)
        {
            lock (_swap)
            {
                if (_current is { } current && ReferenceEquals(current.Certificate, certificate))
                {
                    return current;
                }

                var retired = _current?.Pool;
                var next = (certificate, factory.BuildPool(context, source, certificate));
                _current = next;
                if (retired is not null)
                {
                    _ = Task.Delay(RetiredPoolLifetime, factory._time).ContinueWith(static (_, pool) => ((HttpMessageInvoker)pool!).Dispose(), retired, TaskScheduler.Default);
                }

                return next;
            }
        }
    }

    /// <summary>YARP's own factory, for clusters without a certificate and for its handler settings.
    /// A changed <c>ClientCertificate</c> name is a change that needs a new client.</summary>
    private sealed class YarpClients(ILogger<ForwarderHttpClientFactory> logger) : ForwarderHttpClientFactory(logger)
    {
        public bool CanReuse(ForwarderHttpClientContext context) => CanReuseOldClient(context);

        public void Configure(ForwarderHttpClientContext context, SocketsHttpHandler handler) => ConfigureHandler(context, handler);

        public HttpMessageHandler Wrap(ForwarderHttpClientContext context, SocketsHttpHandler handler) => WrapHandler(context, handler);

        // Innermost, so a signature covers the request as the socket handler sends it.
        protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler) =>
            base.WrapHandler(context, new RequestSigning.Handler(handler));

        protected override bool CanReuseOldClient(ForwarderHttpClientContext context) =>
            base.CanReuseOldClient(context) && CertificateName(context.OldMetadata) == CertificateName(context.NewMetadata);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2301, Level = LogLevel.Error, Message = "Cluster {ClusterId} names client certificate {CredentialName}, which the serving configuration lacks; nothing is sent")]
        public static partial void CertificateMissing(ILogger logger, string clusterId, string credentialName);

        [LoggerMessage(EventId = 2302, Level = LogLevel.Information, Message = "Connections to cluster {ClusterId} now present client certificate {CredentialName}: {CertificateSubject}, {CredentialFingerprint}")]
        public static partial void PoolBuilt(ILogger logger, string clusterId, string credentialName, string certificateSubject, string credentialFingerprint);
    }
}
