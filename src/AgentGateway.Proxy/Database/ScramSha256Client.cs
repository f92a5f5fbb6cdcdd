using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs it: no channel binding
/// (<c>n,,</c>; the connection is already verify-full TLS, or loopback), the user name left empty
/// (the server takes the startup packet's). Written here because no maintained package exposes a
/// SCRAM client: Npgsql and libpq keep theirs internal. It is kept to what the protocol needs, and
/// it checks what they do not all check: the server's nonce extends ours, the iteration count is
/// within bounds, and the server's signature is compared in constant time before the login counts.
/// </summary>
internal sealed class ScramSha256Client
{
    public const string Mechanism = "SCRAM-SHA-256";

    /// <summary>RFC 7677 §4 asks for at least 4096; fewer would make a captured proof cheap to
    /// attack offline. More than a million is a server making the gateway spin.</summary>
    public const int MinIterations = 4096;
    public const int MaxIterations = 1_000_000;

    /// <summary>The salted password's keys, by (password, salt, iterations) hash: PBKDF2 is the
    /// costly step of a login and gives the same answer every time for the same role, so a new
    /// session with a cached credential costs two HMACs instead. Kept in this process only.</summary>
    private static readonly ConcurrentDictionary<UInt128, (byte[] ClientKey, byte[] ServerKey)> Keys = new();
    private const int KeyCapacity = 10_000;

    private readonly string _password;
    private readonly string _clientNonce;
    private string? _clientFirstBare;
    private byte[]? _expectedServerSignature;

    public ScramSha256Client(string password)
    {
        _password = password;
        _clientNonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
    }

    /// <summary>The SASLInitialResponse payload.</summary>
    public byte[] ClientFirst()
    {
        _clientFirstBare = "n=,r=" + _clientNonce;
        return Encoding.ASCII.GetBytes("n,," + _clientFirstBare);
    }

    /// <summary>The SASLResponse payload answering the server-first message, or null (with why) when
    /// the server's message is not one an honest server sends.</summary>
    public byte[]? ClientFinal(ReadOnlySpan<byte> serverFirst, out string? error)
    {
        error = null;
        var text = Encoding.UTF8.GetString(serverFirst);
        string? nonce = null, salt = null, iterations = null;
        foreach (var attribute in text.Split(','))
        {
            if (attribute.Length < 2 || attribute[1] != '=')
            {
                continue;
            }

            switch (attribute[0])
            {
                case 'r': nonce ??= attribute[2..]; break;
                case 's': salt ??= attribute[2..]; break;
                case 'i': iterations ??= attribute[2..]; break;
                case 'm': error = "the server asks for a SCRAM extension"; return null;
            }
        }

        if (nonce is null || !nonce.StartsWith(_clientNonce, StringComparison.Ordinal) || nonce.Length == _clientNonce.Length)
        {
            error = "the server's nonce does not extend the gateway's";
            return null;
        }

        if (!int.TryParse(iterations, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count)
            || count < MinIterations || count > MaxIterations)
        {
            error = $"the server's iteration count is outside {MinIterations}..{MaxIterations}";
            return null;
        }

        var saltBytes = new byte[salt?.Length ?? 0];
        if (salt is null || !Convert.TryFromBase64String(salt, saltBytes, out var saltLength) || saltLength == 0)
        {
            error = "the server's salt is not base64";
            return null;
        }

        var (clientKey, serverKey) = DeriveKeys(saltBytes.AsSpan(0, saltLength), count);
        var withoutProof = "c=biws,r=" + nonce;
        var authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + text + "," + withoutProof);
        var storedKey = SHA256.HashData(clientKey);
        var clientSignature = HMACSHA256.HashData(storedKey, authMessage);
        var proof = new byte[clientKey.Length];
        for (var i = 0; i < proof.Length; i++)
        {
            proof[i] = (byte)(clientKey[i] ^ clientSignature[i]);
        }

        _expectedServerSignature = HMACSHA256.HashData(serverKey, authMessage);
        return Encoding.ASCII.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof));
    }

    /// <summary>Whether the server-final message proves the server knows the password's keys (so the
    /// gateway is talking to the server it meant to), compared in constant time.</summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> serverFinal)
    {
        if (_expectedServerSignature is null || serverFinal.Length < 3 || serverFinal[0] != (byte)'v' || serverFinal[1] != (byte)'=')
        {
            return false;
        }

        var encoded = serverFinal[2..];
        var comma = encoded.IndexOf((byte)',');
        if (comma >= 0)
        {
            encoded = encoded[..comma];
        }

        Span<byte> signature = stackalloc byte[64];
        return Convert.TryFromBase64String(Encoding.ASCII.GetString(encoded), signature, out var length)
            && CryptographicOperations.FixedTimeEquals(signature[..length], _expectedServerSignature);
    }

    private (byte[] ClientKey, byte[] ServerKey) DeriveKeys(ReadOnlySpan<byte> salt, int iterations)
    {
        // PostgreSQL applies SASLprep to passwords; NFKC is its core and leaves ASCII (every token,
        // most passwords) as it is.
        var password = Encoding.UTF8.GetBytes(_password.IsNormalized(NormalizationForm.FormKC) ? _password : _password.Normalize(NormalizationForm.FormKC));
        Span<byte> material = stackalloc byte[32];
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            hash.AppendData(BitConverter.GetBytes(password.Length));
            hash.AppendData(password);
            hash.AppendData(salt);
            hash.AppendData(BitConverter.GetBytes(iterations));
            hash.GetHashAndReset(material);
        }

        var key = System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(material);
        if (Keys.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var salted = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, 32);
        var keys = (HMACSHA256.HashData(salted, "Client Key"u8), HMACSHA256.HashData(salted, "Server Key"u8));
        CryptographicOperations.ZeroMemory(salted);
        if (Keys.Count >= KeyCapacity)
        {
            Keys.Clear();
        }

        Keys[key] = keys;
        return keys;
    }
}
