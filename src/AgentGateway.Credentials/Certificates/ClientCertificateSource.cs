using System.Diagnostics.CodeAnalysis;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.Certificates;

/// <summary>
/// A client certificate for mutual TLS to an upstream. The certificate rides on the connection,
/// so the proxy's per-cluster HTTP handler asks <see cref="Current"/> on every request and builds
/// new connections when it changes; a route on that cluster asks <see cref="GetAsync"/>, which
/// injects no header but refuses to forward while the certificate is outside its validity, and
/// reports which certificate was used.
/// The files are re-read at most once per <c>ReloadInterval</c>: a rotated pair (e.g. by
/// cert-manager or a Kubernetes secret update) is used for new connections without a reload. A
/// half-written rotation (new certificate, old key) is ignored until the pair matches again.
/// </summary>
public sealed partial class ClientCertificateSource : ICredentialSource, IDisposable
{
    private readonly MtlsClientCertificateOptions _definition;
    private readonly CredentialFingerprint _fingerprint;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _reloadLock = new();
    private ClientCertificate _loaded;
    private long _nextCheck;

    private ClientCertificateSource(
        MtlsClientCertificateOptions definition, ClientCertificate loaded, X509Certificate2Collection? authorities, CredentialFingerprint fingerprint, TimeProvider time, ILogger logger)
    {
        _definition = definition;
        _loaded = loaded;
        ServerCertificateAuthorities = authorities;
        _fingerprint = fingerprint;
        _time = time;
        _logger = logger;
        _nextCheck = time.GetTimestamp() + Ticks(definition.ReloadInterval);
    }

    public string Name => _definition.Name;

    public CredentialKind Kind => CredentialKind.MtlsClientCertificate;

    /// <summary>None: the certificate travels in the TLS handshake.</summary>
    public string? HeaderName => null;

    /// <summary>The only roots trusted for the upstream's server certificate, or null for the system store.</summary>
    public X509Certificate2Collection? ServerCertificateAuthorities { get; }

    /// <summary>The certificate to present now, after a rotation check if one is due. A rotation
    /// yields a new instance, so callers can compare references to notice it.</summary>
    public ClientCertificate Current
    {
        get
        {
            ReloadIfDue();
            return Volatile.Read(ref _loaded);
        }
    }

    /// <summary>Loads the pair (and the CA bundle) at configuration load; null, with problems under
    /// <paramref name="path"/>, when they are missing, unreadable, mismatched or expired.</summary>
    public static ClientCertificateSource? Create(
        MtlsClientCertificateOptions definition, string path, CredentialFingerprint fingerprint, TimeProvider time, ILogger logger, ConfigProblems problems)
    {
        var loaded = TryLoad(definition, fingerprint, out var error);
        if (loaded is null)
        {
            problems.Add(path, error!);
            return null;
        }

        if (loaded.NotAfter <= time.GetUtcNow())
        {
            problems.Add(path + ":Certificate", $"expired at {loaded.NotAfter:O}");
            loaded.Certificate.Dispose();
            return null;
        }

        X509Certificate2Collection? authorities = null;
        if (definition.ServerCertificateAuthority is { } reference)
        {
            if (!PemBundle.TryResolve(reference, out authorities, out error))
            {
                problems.Add(path + ":ServerCertificateAuthority", error!);
                loaded.Certificate.Dispose();
                return null;
            }
        }

        Log.CertificateLoaded(logger, definition.Name, loaded.Certificate.Subject, loaded.Fingerprint, loaded.NotAfter);
        return new ClientCertificateSource(definition, loaded, authorities, fingerprint, time, logger);
    }

    public ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        ReloadIfDue();
        var loaded = Volatile.Read(ref _loaded);
        var now = _time.GetUtcNow();
        var (notBefore, notAfter) = (loaded.NotBefore, loaded.NotAfter);
        if (now >= notAfter || now < notBefore)
        {
            // An upstream would refuse it anyway; saying so here gives the agent a clear 503
            // instead of a handshake failure, and the operator a log line naming the certificate.
            var detail = now >= notAfter
                ? $"the client certificate of credential '{Name}' expired at {notAfter:O}"
                : $"the client certificate of credential '{Name}' is not valid before {notBefore:O}";
            return ValueTask.FromResult(CredentialResult.Failure(new CredentialError(Name, detail)));
        }

        return ValueTask.FromResult(CredentialResult.Success(
            new HopCredential(Name, Kind, null, null, loaded.Fingerprint, CredentialSource.Static, notAfter)));
    }

    public void Dispose() => Volatile.Read(ref _loaded).Certificate.Dispose();

    private void ReloadIfDue()
    {
        var now = _time.GetTimestamp();
        if (now < Volatile.Read(ref _nextCheck) || !_reloadLock.TryEnter())
        {
            // Not due, or another thread is checking: use what is loaded.
            return;
        }

        try
        {
            Volatile.Write(ref _nextCheck, now + Ticks(_definition.ReloadInterval));
            var current = Volatile.Read(ref _loaded);
            if (!TryReadPair(_definition, out var certificatePem, out var keyPem, out var error))
            {
                Log.RotationFailed(_logger, Name, error);
                return;
            }

            if (CryptographicOperations.FixedTimeEquals(Digest(certificatePem, keyPem), current.Digest))
            {
                return;
            }

            var next = TryParse(certificatePem, keyPem, _fingerprint, out error);
            if (next is null)
            {
                Log.RotationFailed(_logger, Name, error!);
                return;
            }

            Volatile.Write(ref _loaded, next);
            Log.CertificateRotated(_logger, Name, next.Certificate.Subject, current.Fingerprint, next.Fingerprint, next.NotAfter);
            // The old certificate may still be in a handshake on another thread; it is left to
            // the finalizer rather than disposed under it.
        }
        finally
        {
            _reloadLock.Exit();
        }
    }

    private static ClientCertificate? TryLoad(MtlsClientCertificateOptions definition, CredentialFingerprint fingerprint, out string? error) =>
        TryReadPair(definition, out var certificatePem, out var keyPem, out error)
            ? TryParse(certificatePem, keyPem, fingerprint, out error)
            : null;

    private static bool TryReadPair(
        MtlsClientCertificateOptions definition,
        [NotNullWhen(true)] out string? certificatePem,
        [NotNullWhen(true)] out string? keyPem,
        [NotNullWhen(false)] out string? error)
    {
        certificatePem = keyPem = null;
        if (!SecretResolver.TryResolve(definition.Certificate, out var certificate, out error))
        {
            error = "Certificate: " + error;
            return false;
        }

        if (!SecretResolver.TryResolve(definition.PrivateKey, out var key, out error))
        {
            error = "PrivateKey: " + error;
            return false;
        }

        certificatePem = certificate!.Reveal();
        keyPem = key!.Reveal();
        return true;
    }

    private static ClientCertificate? TryParse(string certificatePem, string keyPem, CredentialFingerprint fingerprint, out string? error)
    {
        try
        {
            var certificate = X509Certificate2.CreateFromPem(certificatePem, keyPem);
            if (!certificate.HasPrivateKey)
            {
                certificate.Dispose();
                error = "the private key does not belong to the certificate";
                return null;
            }

            // Certificates after the leaf are intermediates, sent with it so the upstream can
            // build the chain to its trusted root.
            var all = new X509Certificate2Collection();
            all.ImportFromPem(certificatePem);
            var intermediates = new X509Certificate2Collection();
            foreach (var extra in all)
            {
                if (extra.Thumbprint != certificate.Thumbprint)
                {
                    intermediates.Add(extra);
                }
            }

            error = null;
            return new ClientCertificate(
                certificate,
                SslStreamCertificateContext.Create(certificate, intermediates, offline: true),
                new DateTimeOffset(certificate.NotBefore.ToUniversalTime()),
                new DateTimeOffset(certificate.NotAfter.ToUniversalTime()),
                fingerprint.Of(certificate.Thumbprint),
                Digest(certificatePem, keyPem));
        }
        catch (CryptographicException)
        {
            // The exception text can quote PEM content; the problem names the failure class only.
            error = "the certificate and private key are not a matching PEM pair";
            return null;
        }
        catch (ArgumentException)
        {
            error = "the certificate or the private key is not PEM";
            return null;
        }
    }

    private static byte[] Digest(string certificatePem, string keyPem)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(certificatePem));
        sha.AppendData([0]);
        sha.AppendData(Encoding.UTF8.GetBytes(keyPem));
        return sha.GetHashAndReset();
    }

    private long Ticks(TimeSpan interval) => (long)(interval.TotalSeconds * _time.TimestampFrequency);


    private static partial class Log
    {
        [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Client certificate {CredentialName} loaded: {CertificateSubject}, {CredentialFingerprint}, expires {CredentialExpiresAt:O}")]
        public static partial void CertificateLoaded(ILogger logger, string credentialName, string certificateSubject, string credentialFingerprint, DateTimeOffset credentialExpiresAt);

        [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Client certificate {CredentialName} rotated: {CertificateSubject}, {PreviousFingerprint} -> {CredentialFingerprint}, expires {CredentialExpiresAt:O}; new connections present it")]
        public static partial void CertificateRotated(ILogger logger, string credentialName, string certificateSubject, string previousFingerprint, string credentialFingerprint, DateTimeOffset credentialExpiresAt);

        [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Client certificate {CredentialName} could not be re-read ({Reason}); the loaded certificate stays in use")]
        public static partial void RotationFailed(ILogger logger, string credentialName, string reason);
    }
}

/// <summary>One loaded certificate and key pair, ready for TLS: the leaf, its chain context, its
/// validity and its keyed fingerprint for telemetry.</summary>
public sealed class ClientCertificate(
    X509Certificate2 certificate, SslStreamCertificateContext context, DateTimeOffset notBefore, DateTimeOffset notAfter, string fingerprint, byte[] digest)
{
    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>The leaf with its intermediates, as the TLS client presents them.</summary>
    public SslStreamCertificateContext Context { get; } = context;

    public DateTimeOffset NotBefore { get; } = notBefore;

    public DateTimeOffset NotAfter { get; } = notAfter;

    public string Fingerprint { get; } = fingerprint;

    internal byte[] Digest { get; } = digest;

    public override string ToString() => $"{Certificate.Subject} ({Fingerprint}, until {NotAfter:O})";
}
