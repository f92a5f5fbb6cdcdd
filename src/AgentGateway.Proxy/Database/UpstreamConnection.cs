using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace AgentGateway.Proxy.Database;

/// <summary>Why the upstream login failed: a SQLSTATE and a sentence of the gateway's own for the
/// agent (never the server's text), and a short reason for logs and metrics.</summary>
internal sealed record UpstreamFailure(string SqlState, string Message, string Reason);

/// <summary>
/// The gateway's own connection to the PostgreSQL server, logged in as the grant's role with the
/// hop credential: TLS verified against the configured CA and host name (never downgraded), then
/// the startup packet, then whatever authentication the server asks for — SCRAM-SHA-256; MD5 or
/// the password in clear only from a loopback server or with the operator's opt-in — and the
/// server's greeting up to ReadyForQuery.
/// </summary>
internal sealed class UpstreamConnection : IAsyncDisposable
{
    private static readonly SslApplicationProtocol PostgresAlpn = new("postgresql");

    private readonly Socket _socket;

    private UpstreamConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        Stream = stream;
        Reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        Writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
    }

    public Stream Stream { get; }

    public PipeReader Reader { get; }

    public PipeWriter Writer { get; }

    /// <summary>The server's backend key, for cancelling its queries. Never shown to the agent.</summary>
    public int ProcessId { get; private set; }

    public int SecretKey { get; private set; }

    /// <summary>The server's ParameterStatus and NoticeResponse messages of the login, as received,
    /// for the agent.</summary>
    public byte[] Greeting { get; private set; } = [];

    public static async Task<(UpstreamConnection? Connection, UpstreamFailure? Failure)> ConnectAsync(
        UpstreamDatabase upstream, string role, string password, IReadOnlyList<KeyValuePair<string, string>> parameters, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        UpstreamConnection? connection = null;
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connect.CancelAfter(upstream.ConnectTimeout);
                await socket.ConnectAsync(upstream.Host, upstream.Port, connect.Token);
            }

            Stream stream = new NetworkStream(socket, ownsSocket: false);
            if (upstream.Tls)
            {
                stream = await StartTlsAsync(stream, upstream, cancellationToken) ?? throw new UpstreamException(
                    new UpstreamFailure(SqlState.ConnectionFailure, "the database server did not accept TLS or did not prove its identity", "upstream-tls"));
            }

            connection = new UpstreamConnection(socket, stream);
            var startup = new List<KeyValuePair<string, string>> { new("user", role), new("database", upstream.Database) };
            startup.AddRange(parameters);
            await connection.Writer.WriteAsync(PgWire.StartupPacket(startup), cancellationToken);
            if (await connection.LoginAsync(upstream, role, password, cancellationToken) is { } failure)
            {
                await connection.DisposeAsync();
                return (null, failure);
            }

            return (connection, null);
        }
        catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or UpstreamException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
            else
            {
                socket.Dispose();
            }

            return (null, ex is UpstreamException known ? known.Failure
                : new UpstreamFailure(SqlState.ConnectionFailure, "the database server could not be reached", ex is OperationCanceledException ? "upstream-timeout" : "upstream-unreachable"));
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
            else
            {
                socket.Dispose();
            }

            throw;
        }
    }

    /// <summary>Sends the server a CancelRequest for this connection's running query, on a connection
    /// of its own (as PostgreSQL wants), with the same TLS as the session.</summary>
    public static async Task CancelAsync(UpstreamDatabase upstream, int processId, int secretKey, CancellationToken cancellationToken)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(upstream.Host, upstream.Port, cancellationToken);
        await using var network = new NetworkStream(socket, ownsSocket: false);
        await using var tls = upstream.Tls ? await StartTlsAsync(network, upstream, cancellationToken) : null;
        Stream stream = tls ?? (Stream)network;
        await stream.WriteAsync(PgWire.Request(PgWire.CancelRequest, processId, secretKey, cancel: true), cancellationToken);
        await stream.FlushAsync(cancellationToken);
        // The server closes the connection when it has read the request.
        await stream.ReadAtLeastAsync(new byte[1], 1, throwOnEndOfStream: false, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await Reader.CompleteAsync();
        await Writer.CompleteAsync();
        await Stream.DisposeAsync();
        _socket.Dispose();
    }

    /// <summary>SSLRequest, then a TLS handshake that must verify; null when the server said no.</summary>
    private static async Task<SslStream?> StartTlsAsync(Stream stream, UpstreamDatabase upstream, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(PgWire.Request(PgWire.SslRequest), cancellationToken);
        var answer = new byte[1];
        if (await stream.ReadAsync(answer, cancellationToken) != 1 || answer[0] != (byte)'S')
        {
            return null;
        }

        var tls = new SslStream(stream, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = upstream.Host,
            ApplicationProtocols = [PostgresAlpn],
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => Verify(certificate, errors, upstream.Roots!),
        }, cancellationToken);
        return tls;
    }

    /// <summary>verify-full: the host name matches (the platform checks it) and the chain ends at one of
    /// the configured CAs — never at the operating system's store.</summary>
    private static bool Verify(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        if (certificate is not X509Certificate2 leaf || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }

    private async Task<UpstreamFailure?> LoginAsync(UpstreamDatabase upstream, string role, string password, CancellationToken cancellationToken)
    {
        var weakAllowed = upstream.AllowWeakPasswordAuthentication || upstream.Loopback;
        ScramSha256Client? scram = null;
        var serverVerified = false;
        var greeting = new ArrayBufferWriter<byte>(512);
        var authenticated = false;
        while (true)
        {
            var (type, body) = await ReadAsync(cancellationToken);
            switch ((char)type)
            {
                case 'E':
                    return Refused(PgWire.ErrorCode(body));
                case 'R' when !authenticated && body.Length >= 4:
                    var code = BinaryPrimitives.ReadInt32BigEndian(body);
                    switch (code)
                    {
                        case 0:
                            // A server that started SCRAM must finish it: an "OK" without its
                            // signature would let an impostor skip proving it knows the password.
                            if (scram is not null && !serverVerified)
                            {
                                return Failure("the database server ended SCRAM without proving its identity", "upstream-scram-unverified");
                            }

                            authenticated = true;
                            break;
                        case 3 when weakAllowed:
                            await SendAsync((byte)'p', NullTerminated(password), cancellationToken);
                            break;
                        case 5 when weakAllowed && body.Length >= 8:
                            await SendAsync((byte)'p', NullTerminated(Md5Password(password, role, body.AsSpan(4, 4))), cancellationToken);
                            break;
                        case 3 or 5:
                            return Failure("the database server asked for the password in a weak form (cleartext or MD5); set Upstream:AllowWeakPasswordAuthentication to allow it", "upstream-weak-authentication");
                        case 10 when scram is null:
                            if (!Mechanisms(body.AsSpan(4)).Contains(ScramSha256Client.Mechanism))
                            {
                                return Failure("the database server offers no SASL mechanism the gateway speaks (SCRAM-SHA-256)", "upstream-unsupported-authentication");
                            }

                            scram = new ScramSha256Client(password);
                            var first = scram.ClientFirst();
                            var initial = new ArrayBufferWriter<byte>(64 + first.Length);
                            PgWire.CString(initial, ScramSha256Client.Mechanism);
                            PgWire.Int32(initial, first.Length);
                            initial.Write(first);
                            await SendAsync((byte)'p', initial.WrittenSpan.ToArray(), cancellationToken);
                            break;
                        case 11 when scram is not null:
                            if (scram.ClientFinal(body.AsSpan(4), out var why) is not { } final)
                            {
                                return Failure("the database server's SCRAM exchange was malformed: " + why, "upstream-scram-malformed");
                            }

                            await SendAsync((byte)'p', final, cancellationToken);
                            break;
                        case 12 when scram is not null && !serverVerified:
                            if (!scram.VerifyServerFinal(body.AsSpan(4)))
                            {
                                return Failure("the database server could not prove it knows the role's password (SCRAM server signature)", "upstream-scram-unverified");
                            }

                            serverVerified = true;
                            break;
                        default:
                            return Failure($"the database server asked for an authentication the gateway does not speak (code {code})", "upstream-unsupported-authentication");
                    }

                    break;
                case 'S' or 'N' when authenticated:
                    PgWire.Message(greeting, type, body);
                    break;
                case 'K' when authenticated && body.Length == 8:
                    ProcessId = BinaryPrimitives.ReadInt32BigEndian(body);
                    SecretKey = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(4));
                    break;
                case 'Z' when authenticated:
                    Greeting = greeting.WrittenSpan.ToArray();
                    return null;
                case 'N':
                    break;
                default:
                    return Failure("the database server sent an unexpected message during the login", "upstream-protocol");
            }
        }
    }

    private async Task<(byte Type, byte[] Body)> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await Reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (PgWire.TryReadMessage(ref buffer, PgWire.MaxLoginMessage, out var type, out var body, out var malformed))
            {
                Reader.AdvanceTo(buffer.Start);
                return (type, body);
            }

            if (malformed || result.IsCompleted)
            {
                throw new UpstreamException(new UpstreamFailure(SqlState.ConnectionFailure, "the database server closed the connection or sent a malformed message during the login", "upstream-protocol"));
            }

            Reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private async Task SendAsync(byte type, byte[] body, CancellationToken cancellationToken)
    {
        PgWire.Message(Writer, type, body);
        await Writer.FlushAsync(cancellationToken);
    }

    private static UpstreamFailure Failure(string message, string reason) => new(SqlState.UpstreamRefused, message, reason);

    private static UpstreamFailure Refused(string? sqlState) => sqlState switch
    {
        "28P01" or "28000" => new(SqlState.UpstreamRefused, "the database server refused the gateway's login for this role (the hop credential is wrong or expired)", "upstream-login-refused"),
        "53300" => new("53300", "the database server has no free connection for this role", "upstream-too-many-connections"),
        "3D000" => new(SqlState.UpstreamRefused, "the database the gateway is configured for does not exist on the server", "upstream-database-missing"),
        "57P03" => new("57P03", "the database server is starting up or shutting down", "upstream-not-ready"),
        _ => new(SqlState.UpstreamRefused, "the database server refused the gateway's login" + (sqlState is { Length: 5 } ? $" (SQLSTATE {sqlState})" : ""), "upstream-login-refused"),
    };

    private static HashSet<string> Mechanisms(ReadOnlySpan<byte> list)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (list.Length > 0 && list[0] != 0)
        {
            var end = list.IndexOf((byte)0);
            if (end < 0)
            {
                break;
            }

            names.Add(Encoding.ASCII.GetString(list[..end]));
            list = list[(end + 1)..];
        }

        return names;
    }

    private static byte[] NullTerminated(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    /// <summary>PostgreSQL's md5 answer: "md5" + md5(md5(password + user) + salt), in hex.</summary>
    private static string Md5Password(string password, string user, ReadOnlySpan<byte> salt)
    {
#pragma warning disable CA5351 // The server chose MD5; it is answered only from loopback or with the operator's opt-in.
        var inner = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(password + user)));
        var salted = new byte[inner.Length + 4];
        Encoding.ASCII.GetBytes(inner, salted);
        salt.CopyTo(salted.AsSpan(inner.Length));
        return "md5" + Convert.ToHexStringLower(MD5.HashData(salted));
#pragma warning restore CA5351
    }

    private sealed class UpstreamException(UpstreamFailure failure) : Exception(failure.Reason)
    {
        public UpstreamFailure Failure { get; } = failure;
    }
}
