using System.Security.Cryptography.X509Certificates;
using System.Collections.Frozen;
using AgentGateway.Credentials;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Certificates;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.Secrets;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Provenance;
using AgentGateway.Proxy.Stripping;
using AgentGateway.Proxy.Upstream;
using AgentGateway.Proxy.Identity;
using Microsoft.Extensions.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>The outcome of a load: a revision, or every problem found.</summary>
public sealed record ConfigLoadResult(GatewayRevision? Revision, IReadOnlyList<ConfigProblem> Problems)
{
    public bool Succeeded => Revision is not null;
}

/// <summary>
/// Turns a configuration snapshot into a <see cref="GatewayRevision"/>, collecting every problem
/// — YARP's own route and cluster validation included — with the configuration path of each.
/// Makes no network call: keys and tokens are fetched when first used.
/// </summary>
public sealed class GatewayConfigLoader(
    IConfigValidator proxyValidator,
    IssuerKeySources issuerKeys,
    CredentialSetFactory credentials,
    CredentialFingerprint fingerprint,
    TimeProvider time)
{
    public const string RouteCredentialMetadataKey = "Credential";

    public const string RouteInspectMetadataKey = "Inspect";

    public const string RouteProvenanceMetadataKey = "Provenance";

    public const string RouteLlmProviderMetadataKey = "LlmProvider";

    /// <summary>The protocol upgrade a route lets through (<c>WebSocket</c>); absent, none.</summary>
    public const string RouteUpgradeMetadataKey = "Upgrade";

    private static readonly string[] GatewayKeys = ["Redis", "Cache", "Inbound", "Agents", "Grants", "Credentials", "Policy", "Audit", "Admin", "Provenance", "Databases"];

    /// <summary>Without a configured key: one generated per process, so a reload keeps it.</summary>
    private static readonly Lazy<Microsoft.IdentityModel.Tokens.SecurityKey> EphemeralProvenanceKey = new(ProvenanceSigner.Ephemeral);

    private static readonly string[] DefaultAlgorithms = ["RS256", "PS256", "ES256"];

    private static readonly string[] DefaultTokenTypes = ["at+jwt"];

    private static readonly FrozenSet<string> AllowedAlgorithms = FrozenSet.ToFrozenSet(
        ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"], StringComparer.Ordinal);

    public async Task<ConfigLoadResult> LoadAsync(IConfiguration configuration, long number, CancellationToken cancellationToken)
    {
        var problems = new ConfigProblems();

        var proxy = configuration.GetSection("ReverseProxy");
        if (!proxy.Exists())
        {
            problems.Add("ReverseProxy", "is missing: routes and clusters are configured here (YARP's schema)");
        }

        var (routes, clusters) = ProxyConfigReader.Read(proxy, problems);
        await ValidateProxyAsync(routes, clusters, problems);

        var gateway = configuration.GetSection("Gateway");
        foreach (var child in gateway.GetChildren().Where(c => !GatewayKeys.Contains(c.Key, StringComparer.OrdinalIgnoreCase)))
        {
            problems.Add(child.Path, $"unknown setting '{child.Key}'; expected one of: {string.Join(", ", GatewayKeys)}");
        }

        var inbound = ReadInbound(gateway.GetSection("Inbound"), problems);
        var definitions = credentials.Read(gateway.GetSection("Credentials"), problems);
        var redis = gateway["Redis"];
        var cache = CacheConfigReader.Read(gateway.GetSection("Cache"), shared: !string.IsNullOrWhiteSpace(redis), problems);
        var credentialSet = credentials.Build(definitions, cache, "Gateway:Credentials", problems);
        CheckClusters(clusters, definitions, problems);
        var gatewayRoutes = ReadRouteCredentials(routes, clusters, definitions, credentialSet, inbound.Policy.Delegation, problems);
        var grants = PolicyConfigReader.ReadGrants(gateway.GetSection("Grants"), gatewayRoutes, problems);
        var policy = PolicyConfigReader.ReadPolicy(gateway.GetSection("Policy"), grants, problems);
        var audit = ReadAudit(gateway.GetSection("Audit"), problems);
        var admin = ReadAdmin(gateway.GetSection("Admin"), inbound.Names, grants, problems);
        var provenance = ReadProvenance(gateway.GetSection("Provenance"), problems);
        var agents = ReadAgents(gateway.GetSection("Agents"), inbound.Names, grants, problems);
        CheckForwardHeaders(
            routes,
            [inbound.Policy.Delegation.Header, policy.TaskHeader, inbound.Policy.StaticKeyHeader ?? policy.TaskHeader, provenance?.Options.Header ?? policy.TaskHeader],
            problems);
        var databases = Database.DatabaseConfigReader.Read(gateway.GetSection("Databases"), gateway.GetSection("Grants"), grants, credentialSet, fingerprint, problems);

        if (problems.Any)
        {
            return new ConfigLoadResult(null, problems.Items);
        }

        return new ConfigLoadResult(
            new GatewayRevision
            {
                Number = number,
                LoadedAt = time.GetUtcNow(),
                Routes = routes,
                Clusters = clusters,
                GatewayRoutes = gatewayRoutes,
                Inbound = inbound.Policy,
                Agents = agents,
                Credentials = credentialSet,
                Grants = grants,
                Policy = policy,
                Redis = string.IsNullOrWhiteSpace(redis) ? null : redis,
                AuditPath = audit,
                Admin = admin,
                Provenance = provenance!,
                Databases = databases,
            },
            []);
    }

    private async Task ValidateProxyAsync(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters, ConfigProblems problems)
    {
        var clusterIds = clusters.Select(c => c.ClusterId).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var route in routes)
        {
            foreach (var error in await proxyValidator.ValidateRouteAsync(route))
            {
                problems.Add($"ReverseProxy:Routes:{route.RouteId}", error.Message);
            }

            if (route.ClusterId is { } clusterId && !clusterIds.Contains(clusterId))
            {
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:ClusterId", $"names cluster '{clusterId}', which is not configured");
            }
        }

        foreach (var cluster in clusters)
        {
            foreach (var error in await proxyValidator.ValidateClusterAsync(cluster))
            {
                problems.Add($"ReverseProxy:Clusters:{cluster.ClusterId}", error.Message);
            }
        }
    }

    private (InboundPolicy Policy, IReadOnlySet<string> Names) ReadInbound(IConfigurationSection section, ConfigProblems problems)
    {
        var settings = SectionReader.Read<InboundSettings>(section, problems);
        if (settings.ClockSkew < TimeSpan.Zero || settings.ClockSkew > TimeSpan.FromMinutes(5))
        {
            problems.Add(section.Path + ":ClockSkew", "must be between 00:00:00 and 00:05:00");
        }

        if (settings.MaxTokenLifetime < TimeSpan.FromMinutes(1) || settings.MaxTokenLifetime > TimeSpan.FromDays(1))
        {
            problems.Add(section.Path + ":MaxTokenLifetime", "must be between 00:01:00 and 1.00:00:00");
        }

        if (settings.MaxTokenBytes is < 512 or > 256 * 1024)
        {
            problems.Add(section.Path + ":MaxTokenBytes", "must be between 512 and 262144");
        }

        var byIss = new Dictionary<string, TrustedIssuer>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in section.GetSection("Issuers").GetChildren())
        {
            var issuer = ReadIssuer(entry, settings.ClockSkew, problems);
            if (issuer is null)
            {
                continue;
            }

            names.Add(entry.Key);
            if (!byIss.TryAdd(issuer.Issuer, issuer))
            {
                problems.Add(entry.Path, $"another issuer already has iss '{issuer.Issuer}'");
            }
        }

        var delegation = ReadDelegation(section.Path + ":Delegation", settings.Delegation, names, problems);
        var certificates = new CertificateTrust(
            settings.ClientCertificates is { } client ? ReadPemBundle(section.Path + ":ClientCertificates:TrustBundle", client.TrustBundle, problems) : null,
            settings.Spiffe is { } spiffe ? ReadSpiffe(section.Path + ":Spiffe", spiffe, problems) : null);
        if (settings.StaticKeys.Enabled && (string.IsNullOrEmpty(settings.StaticKeys.Header) || !settings.StaticKeys.Header.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
        {
            problems.Add(section.Path + ":StaticKeys:Header", "must be a header name of letters, digits and '-'");
        }

        var policy = new InboundPolicy(byIss.ToFrozenDictionary(StringComparer.Ordinal), settings.MaxTokenBytes, delegation)
        {
            Certificates = certificates,
            StaticKeyHeader = settings.StaticKeys.Enabled ? settings.StaticKeys.Header : null,
            MaxTokenLifetime = settings.MaxTokenLifetime,
            ClockSkew = settings.ClockSkew,
            PublicOrigins = ReadPublicOrigins(section.Path + ":PublicOrigins", settings.PublicOrigins, problems),
        };
        return (policy, names);
    }

    private static X509Certificate2Collection? ReadPemBundle(string path, string? reference, ConfigProblems problems)
    {
        if (!SecretReference.TryParse(reference, out var parsed, out var error))
        {
            problems.Add(path, error);
            return null;
        }

        if (!SecretResolver.TryResolve(parsed.Value, out var pem, out error))
        {
            problems.Add(path, error!);
            return null;
        }

        var bundle = new X509Certificate2Collection();
        try
        {
            bundle.ImportFromPem(pem!.Reveal());
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            problems.Add(path, "does not hold PEM certificates");
            return null;
        }

        if (bundle.Count == 0)
        {
            problems.Add(path, "holds no PEM certificate");
            return null;
        }

        return bundle;
    }

    private static SpiffeTrust? ReadSpiffe(string path, SpiffeSettings s, ConfigProblems problems)
    {
        if (s.TrustDomain is null || CertificateIdentity.CheckSpiffeId("spiffe://" + s.TrustDomain, out _) is not null)
        {
            problems.Add(path + ":TrustDomain", "must be a SPIFFE trust domain (lower-case letters, digits, '.', '-', '_')");
            return null;
        }

        var roots = s.X509Bundle is null ? [] : ReadPemBundle(path + ":X509Bundle", s.X509Bundle, problems);
        Microsoft.IdentityModel.Tokens.JsonWebKeySet? keys = null;
        if (s.JwtBundle is not null)
        {
            if (!SecretReference.TryParse(s.JwtBundle, out var parsed, out var error) || !SecretResolver.TryResolve(parsed.Value, out var json, out error))
            {
                problems.Add(path + ":JwtBundle", error!);
            }
            else
            {
                try
                {
                    keys = new Microsoft.IdentityModel.Tokens.JsonWebKeySet(json!.Reveal());
                }
                catch (ArgumentException)
                {
                    problems.Add(path + ":JwtBundle", "is not a JWKS document");
                }
            }

            if (s.Audiences.Length == 0)
            {
                problems.Add(path + ":Audiences", "JWT-SVIDs need at least one accepted audience");
            }
        }

        if (s.X509Bundle is null && s.JwtBundle is null)
        {
            problems.Add(path, "set X509Bundle, JwtBundle or both");
        }

        return roots is null ? null : new SpiffeTrust(s.TrustDomain, roots, keys, s.Audiences);
    }

    private static DelegationPolicy ReadDelegation(string path, DelegationSettings settings, HashSet<string> issuerNames, ConfigProblems problems)
    {
        if (string.IsNullOrEmpty(settings.Header) || !settings.Header.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            problems.Add(path + ":Header", "must be a header name of letters, digits, '-' or '_'");
        }
        else if (string.Equals(settings.Header, "Authorization", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add(path + ":Header", "must not be Authorization: that carries the agent's own token");
        }

        for (var i = 0; i < settings.Issuers.Length; i++)
        {
            if (!issuerNames.Contains(settings.Issuers[i]))
            {
                problems.Add($"{path}:Issuers:{i}", $"names issuer '{settings.Issuers[i]}', which is not configured under Gateway:Inbound:Issuers");
            }
        }

        return new DelegationPolicy(settings.Header, settings.Issuers.ToFrozenSet(StringComparer.OrdinalIgnoreCase), settings.RequireAuthorizedParty);
    }

    private TrustedIssuer? ReadIssuer(IConfigurationSection entry, TimeSpan clockSkew, ConfigProblems problems)
    {
        var s = SectionReader.Read<IssuerSettings>(entry, problems);
        s = s with { Algorithms = s.Algorithms ?? DefaultAlgorithms, TokenTypes = s.TokenTypes ?? DefaultTokenTypes };
        var before = problems.Items.Count;
        Uri? metadata = null;
        var discovery = false;
        string? iss = null;
        if (s.Authority is not null && s.JwksUri is not null)
        {
            problems.Add(entry.Path, "set either Authority (OIDC discovery) or Issuer + JwksUri, not both");
        }
        else if (s.Authority is not null)
        {
            if (CredentialConfigReader.TryReadEndpoint(entry.Path + ":Authority", s.Authority, problems, out var authority))
            {
                metadata = new Uri(authority!.AbsoluteUri.TrimEnd('/') + "/.well-known/openid-configuration");
                discovery = true;
            }

            iss = s.Issuer ?? s.Authority;
        }
        else if (s.JwksUri is not null)
        {
            CredentialConfigReader.TryReadEndpoint(entry.Path + ":JwksUri", s.JwksUri, problems, out metadata);
            iss = s.Issuer;
            if (string.IsNullOrWhiteSpace(iss))
            {
                problems.Add(entry.Path + ":Issuer", "is required with JwksUri: the exact iss value of the tokens");
            }
        }
        else
        {
            problems.Add(entry.Path, "needs Authority (OIDC discovery) or Issuer + JwksUri");
        }

        if (s.Audiences.Length == 0 || s.Audiences.Any(string.IsNullOrWhiteSpace))
        {
            problems.Add(entry.Path + ":Audiences", "at least one audience is required: tokens for other APIs must not be accepted here");
        }

        if (s.Algorithms!.Length == 0)
        {
            problems.Add(entry.Path + ":Algorithms", "at least one algorithm is required");
        }

        for (var i = 0; i < s.Algorithms.Length; i++)
        {
            if (!AllowedAlgorithms.Contains(s.Algorithms[i]))
            {
                problems.Add($"{entry.Path}:Algorithms:{i}", $"'{s.Algorithms[i]}' is not allowed; use asymmetric algorithms only: {string.Join(", ", AllowedAlgorithms.Order())}");
            }
        }

        if (s.TokenTypes!.Length == 0 || s.TokenTypes.Any(string.IsNullOrWhiteSpace))
        {
            problems.Add(entry.Path + ":TokenTypes", "at least one token type (typ) is required, e.g. at+jwt");
        }

        if (string.IsNullOrWhiteSpace(s.AgentClaim))
        {
            problems.Add(entry.Path + ":AgentClaim", "is required: the claim that names the agent");
        }

        if (s.KeyRefreshInterval < TimeSpan.FromSeconds(1) || s.KeyRefreshInterval > TimeSpan.FromDays(1))
        {
            problems.Add(entry.Path + ":KeyRefreshInterval", "must be between 00:00:01 and 1.00:00:00");
        }

        if (problems.Items.Count > before || metadata is null || iss is null)
        {
            return null;
        }

        var keys = issuerKeys.Get(metadata, discovery, iss, s.KeyRefreshInterval);
        return new TrustedIssuer(entry.Key, iss, s.Audiences, s.AgentClaim, s.Algorithms, s.TokenTypes!, clockSkew, keys) { RequireDpop = s.RequireDpop };
    }

    private static AgentClass? ReadClass(string path, AgentClassSettings s, Agent agent, Dictionary<string, string> issuers, ConfigProblems problems)
    {
        if (s.InstanceIdleTimeout < TimeSpan.FromMinutes(1))
        {
            problems.Add(path + ":InstanceIdleTimeout", "must be at least 00:01:00");
        }

        if (s.SpiffePrefix is { } prefix)
        {
            if (s.Issuer is not null || s.SubjectPattern is not null || !prefix.EndsWith('/') || CertificateIdentity.CheckSpiffeId(prefix.TrimEnd('/'), out _) is not null)
            {
                problems.Add(path + ":SpiffePrefix", "must be a SPIFFE ID ending with '/', and alone (no Issuer, no SubjectPattern)");
                return null;
            }

            return new AgentClass(agent, CertificateIdentity.SpiffeIssuer, null, prefix, s.InstanceIdleTimeout);
        }

        if (s.Issuer is null || !issuers.TryGetValue(s.Issuer, out var issuer))
        {
            problems.Add(path + ":Issuer", $"names issuer '{s.Issuer}', which is not configured under Gateway:Inbound:Issuers");
            return null;
        }

        if (string.IsNullOrEmpty(s.SubjectPattern) || s.SubjectPattern == "*")
        {
            problems.Add(path + ":SubjectPattern", "is required, and narrower than '*': a class is a family of agents, not the whole issuer");
            return null;
        }

        return new AgentClass(agent, issuer, GlobPattern.ForName(s.SubjectPattern), null, s.InstanceIdleTimeout);
    }

    /// <summary>One identity, of exactly one kind: (issuer, subject), a SPIFFE ID, a certificate
    /// thumbprint or SAN, or a static key's hash.</summary>
    private static AgentIdentityKey? ReadIdentity(AgentIdentitySettings identity, string path, Dictionary<string, string> issuers, ConfigProblems problems)
    {
        var kinds = new[] { identity.Issuer ?? identity.Subject, identity.Spiffe, identity.CertificateThumbprint, identity.CertificateSan, identity.StaticKeySha256 }.Count(v => v is not null);
        if (kinds != 1)
        {
            problems.Add(path, "an identity is one of: Issuer + Subject, Spiffe, CertificateThumbprint, CertificateSan, StaticKeySha256");
            return null;
        }

        if (identity.Spiffe is { } spiffe)
        {
            if (CertificateIdentity.CheckSpiffeId(spiffe, out _) is { } why)
            {
                problems.Add(path + ":Spiffe", why);
                return null;
            }

            return new AgentIdentityKey(CertificateIdentity.SpiffeIssuer, spiffe);
        }

        if (identity.CertificateThumbprint is { } thumbprint)
        {
            var hex = thumbprint.Replace(":", "", StringComparison.Ordinal).ToUpperInvariant();
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            {
                problems.Add(path + ":CertificateThumbprint", "must be a SHA-256 thumbprint: 64 hex digits");
                return null;
            }

            return new AgentIdentityKey(CertificateIdentity.ThumbprintIssuer, hex);
        }

        if (identity.CertificateSan is { } san)
        {
            var colon = san.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || san[..colon] is not ("dns" or "uri" or "email" or "ip") || colon == san.Length - 1)
            {
                problems.Add(path + ":CertificateSan", "must be dns:…, uri:…, email:… or ip:…");
                return null;
            }

            return new AgentIdentityKey(CertificateIdentity.SanIssuer, san);
        }

        if (identity.StaticKeySha256 is { } hash)
        {
            var hex = hash.ToLowerInvariant();
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            {
                problems.Add(path + ":StaticKeySha256", "must be the key's SHA-256: 64 hex digits (e.g. printf %s \"$KEY\" | sha256sum)");
                return null;
            }

            return new AgentIdentityKey(StaticKeys.Issuer, hex);
        }

        if (identity.Issuer is null || !issuers.TryGetValue(identity.Issuer, out var issuerName))
        {
            problems.Add(path + ":Issuer", $"names issuer '{identity.Issuer}', which is not configured under Gateway:Inbound:Issuers");
            return null;
        }

        if (string.IsNullOrEmpty(identity.Subject))
        {
            problems.Add(path + ":Subject", "is required: the agent claim's value");
            return null;
        }

        return new AgentIdentityKey(issuerName, identity.Subject);
    }

    private ProvenanceSigner? ReadProvenance(IConfigurationSection section, ConfigProblems problems)
    {
        var s = SectionReader.Read<ProvenanceSettings>(section, problems);
        if (string.IsNullOrEmpty(s.Header) || !s.Header.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            problems.Add(section.Path + ":Header", "must be a header name of letters, digits and '-'");
        }

        if (s.Lifetime < TimeSpan.FromSeconds(5) || s.Lifetime > TimeSpan.FromMinutes(10))
        {
            problems.Add(section.Path + ":Lifetime", "must be between 00:00:05 and 00:10:00: the assertion covers one request");
        }

        var current = s.SigningKey is null ? EphemeralProvenanceKey.Value : ReadSigningKey(section.Path + ":SigningKey", s.SigningKey, problems);
        var previous = new List<Microsoft.IdentityModel.Tokens.SecurityKey>();
        for (var i = 0; i < s.PreviousKeys.Length; i++)
        {
            if (ReadSigningKey($"{section.Path}:PreviousKeys:{i}", s.PreviousKeys[i], problems) is { } old)
            {
                previous.Add(old);
            }
        }

        return current is null ? null : new ProvenanceSigner(new ProvenanceOptions(s.Header, s.Issuer, s.Lifetime), current, previous, time);
    }

    private static Microsoft.IdentityModel.Tokens.AsymmetricSecurityKey? ReadSigningKey(string path, string reference, ConfigProblems problems)
    {
        if (!SecretReference.TryParse(reference, out var parsed, out var error) || !SecretResolver.TryResolve(parsed.Value, out var pem, out error))
        {
            problems.Add(path, error!);
            return null;
        }

        Microsoft.IdentityModel.Tokens.AsymmetricSecurityKey key;
        try
        {
            var ec = System.Security.Cryptography.ECDsa.Create();
            ec.ImportFromPem(pem!.Reveal());
            key = new Microsoft.IdentityModel.Tokens.ECDsaSecurityKey(ec);
        }
        catch (Exception ex) when (ex is ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            try
            {
                var rsa = System.Security.Cryptography.RSA.Create();
                rsa.ImportFromPem(pem!.Reveal());
                key = new Microsoft.IdentityModel.Tokens.RsaSecurityKey(rsa);
            }
            catch (Exception inner) when (inner is ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                problems.Add(path, "does not hold a PEM EC or RSA private key");
                return null;
            }
        }

        key.KeyId = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(Microsoft.IdentityModel.Tokens.JsonWebKeyConverter.ConvertFromSecurityKey(key).ComputeJwkThumbprint());
        return key;
    }

    private static AdminPolicy ReadAdmin(IConfigurationSection section, IReadOnlySet<string> issuers, FrozenDictionary<string, Grant> grants, ConfigProblems problems)
    {
        var s = SectionReader.Read<AdminSettings>(section, problems);
        if (s.Urls is not null)
        {
            // An admin API nobody can authenticate to would be either useless or open: refuse both.
            if (s.Issuer is null || !issuers.Contains(s.Issuer))
            {
                problems.Add(section.Path + ":Issuer", "must name a Gateway:Inbound:Issuers entry whose tokens operators present");
            }

            if (s.Subjects.Length == 0)
            {
                problems.Add(section.Path + ":Subjects", "name at least one operator (a value of the issuer's agent claim)");
            }
        }

        if (s.DormantAfter < TimeSpan.FromMinutes(1))
        {
            problems.Add(section.Path + ":DormantAfter", "must be at least 00:01:00");
        }

        var templates = new Dictionary<string, AgentTemplate>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, template) in s.Templates)
        {
            var path = $"{section.Path}:Templates:{name}";
            for (var i = 0; i < template.Grants.Length; i++)
            {
                if (!grants.ContainsKey(template.Grants[i]))
                {
                    problems.Add($"{path}:Grants:{i}", $"names grant '{template.Grants[i]}', which is not configured under Gateway:Grants");
                }
            }

            for (var i = 0; i < template.Issuers.Length; i++)
            {
                if (!issuers.Contains(template.Issuers[i]))
                {
                    problems.Add($"{path}:Issuers:{i}", $"names issuer '{template.Issuers[i]}', which is not configured under Gateway:Inbound:Issuers");
                }
            }

            if (template.MaxTimeToLive < TimeSpan.FromMinutes(1) || template.MaxTimeToLive > TimeSpan.FromDays(1))
            {
                problems.Add(path + ":MaxTimeToLive", "must be between 00:01:00 and 1.00:00:00: ephemeral agents are short-lived");
            }

            templates[name] = new AgentTemplate(
                name,
                template.Grants.ToFrozenSet(StringComparer.OrdinalIgnoreCase),
                template.Issuers.ToFrozenSet(StringComparer.OrdinalIgnoreCase),
                template.MaxTimeToLive);
        }

        return new AdminPolicy(s.Issuer, s.Subjects.ToFrozenSet(StringComparer.Ordinal), s.DormantAfter)
        {
            Templates = templates.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase),
            RequireDpop = s.RequireDpop,
            PublicOrigins = ReadPublicOrigins(section.Path + ":PublicOrigins", s.PublicOrigins, problems),
        };
    }

    /// <summary>Origins a DPoP proof's htu may name: each <c>http(s)://host[:port]</c> and nothing more.</summary>
    private static PublicOrigins ReadPublicOrigins(string path, string[] values, ConfigProblems problems)
    {
        var origins = new List<string>();
        for (var i = 0; i < values.Length; i++)
        {
            if (PublicOrigins.TryParseOrigin(values[i], out var origin, out var error))
            {
                origins.Add(origin);
            }
            else
            {
                problems.Add($"{path}:{i}", error);
            }
        }

        return origins.Count == 0 ? PublicOrigins.Listener : PublicOrigins.Create(origins);
    }

    private static string? ReadAudit(IConfigurationSection section, ConfigProblems problems)
    {
        var s = SectionReader.Read<AuditSettings>(section, problems);
        if (s.Path is { } path)
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (string.IsNullOrWhiteSpace(path) || directory is null || !Directory.Exists(directory))
            {
                problems.Add(section.Path + ":Path", "must be a file in an existing directory");
            }
        }

        if (s.Key is not null)
        {
            if (!SecretReference.TryParse(s.Key, out var reference, out var error))
            {
                problems.Add(section.Path + ":Key", error);
            }
            else if (!SecretResolver.TryResolve(reference.Value, out _, out var unresolved))
            {
                problems.Add(section.Path + ":Key", unresolved!);
            }
        }

        return s.Path;
    }

    /// <summary>Cluster-level security: a client certificate goes only to the HTTPS destinations of
    /// the cluster that names it, and no cluster may switch off server-certificate checks (the
    /// gateway would hand hop credentials to whoever sits on the path).</summary>
    private static void CheckClusters(IReadOnlyList<ClusterConfig> clusters, IReadOnlyList<CredentialOptions> definitions, ConfigProblems problems)
    {
        foreach (var cluster in clusters)
        {
            var path = $"ReverseProxy:Clusters:{cluster.ClusterId}";
            if (cluster.HttpClient?.DangerousAcceptAnyServerCertificate == true)
            {
                problems.Add(path + ":HttpClient:DangerousAcceptAnyServerCertificate",
                    "is refused: hop credentials would go to anyone on the path; trust a private CA with an MtlsClientCertificate credential's ServerCertificateAuthority instead");
            }

            if (cluster.Metadata?.TryGetValue(ClientCertificateHttpClientFactory.ClusterMetadataKey, out var name) != true)
            {
                continue;
            }

            var metadataPath = $"{path}:Metadata:{ClientCertificateHttpClientFactory.ClusterMetadataKey}";
            var definition = definitions.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));
            if (definition is not MtlsClientCertificateOptions)
            {
                problems.Add(metadataPath, definition is null
                    ? $"names credential '{name}', which is not configured under Gateway:Credentials"
                    : $"names credential '{name}' of kind {definition.Kind}; a cluster's client certificate must be of kind {CredentialKind.MtlsClientCertificate}");
            }

            foreach (var (id, destination) in cluster.Destinations ?? new Dictionary<string, DestinationConfig>())
            {
                if (!Uri.TryCreate(destination.Address, UriKind.Absolute, out var address) || address.Scheme != Uri.UriSchemeHttps)
                {
                    problems.Add($"{path}:Destinations:{id}:Address", "must be https: the cluster presents a client certificate, which only TLS carries");
                }
            }
        }
    }

    private static FrozenDictionary<string, GatewayRoute> ReadRouteCredentials(
        IReadOnlyList<RouteConfig> routes,
        IReadOnlyList<ClusterConfig> clusters,
        IReadOnlyList<CredentialOptions> definitions,
        CredentialSet credentialSet,
        DelegationPolicy delegation,
        ConfigProblems problems)
    {
        var defined = definitions.Select(d => d.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var result = new Dictionary<string, GatewayRoute>(StringComparer.OrdinalIgnoreCase);
        foreach (var route in routes)
        {
            var inspect = BodyKind.None;
            if (route.Metadata?.TryGetValue(RouteInspectMetadataKey, out var kind) == true
                && (!Enum.TryParse(kind, ignoreCase: false, out inspect) || !Enum.IsDefined(inspect)))
            {
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteInspectMetadataKey}", $"'{kind}' is not one of: {string.Join(", ", Enum.GetNames<BodyKind>())}");
            }

            // Every route says what it injects, if only that it injects nothing: a forgotten key must
            // not silently forward with no credential. The route is still known, so grants naming it
            // are not reported as well.
            if (route.Metadata?.TryGetValue(RouteCredentialMetadataKey, out var name) != true || string.IsNullOrWhiteSpace(name))
            {
                problems.Add(
                    $"ReverseProxy:Routes:{route.RouteId}",
                    $"route '{route.RouteId}' names no hop credential: set Metadata:{RouteCredentialMetadataKey} to a credential, or to '{CredentialName.None}'");
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
                continue;
            }

            if (string.Equals(name, CredentialName.None, StringComparison.OrdinalIgnoreCase))
            {
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
            }
            else if (!defined.Contains(name))
            {
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteCredentialMetadataKey}", $"names credential '{name}', which is not configured under Gateway:Credentials");
            }
            else if (credentialSet.TryGet(name, out var source))
            {
                if (source!.RequiresDelegation && !delegation.Enabled)
                {
                    problems.Add(
                        $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteCredentialMetadataKey}",
                        $"credential '{name}' acts on behalf of users, but no issuer is trusted for delegation (Gateway:Inbound:Delegation:Issuers)");
                }

                if (source.Kind == CredentialKind.MtlsClientCertificate && !ClusterPresents(clusters, route.ClusterId, source.Name))
                {
                    problems.Add(
                        $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteCredentialMetadataKey}",
                        $"credential '{name}' is a client certificate, which travels on the connection: cluster '{route.ClusterId}' must name it in Metadata:{ClientCertificateHttpClientFactory.ClusterMetadataKey}");
                }

                result[route.RouteId] = new GatewayRoute(route.RouteId, source.Name, source, inspect);
            }
            else
            {
                // The credential failed to build (already reported); the route still exists for the grants that name it.
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
            }
        }

        // Which provider's shapes an LLM route speaks: where the gateway reads the model.
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(RouteLlmProviderMetadataKey, out var provider) != true || !result.TryGetValue(route.RouteId, out var compiled))
            {
                continue;
            }

            var at = $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteLlmProviderMetadataKey}";
            if (!Enum.TryParse<LlmProvider>(provider, ignoreCase: false, out var parsed) || !Enum.IsDefined(parsed) || !char.IsAsciiLetter(provider![0]))
            {
                problems.Add(at, $"'{provider}' is not one of: {string.Join(", ", Enum.GetNames<LlmProvider>())}");
            }
            else if (compiled.Inspect != BodyKind.Llm)
            {
                problems.Add(at, $"names the provider of LLM requests, and the route does not inspect them; set its Metadata:{RouteInspectMetadataKey} to Llm");
            }
            else
            {
                result[route.RouteId] = compiled with { LlmProvider = parsed };
            }
        }

        // Provenance is a per-route switch, whatever the route's credential.
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(RouteProvenanceMetadataKey, out var flag) == true && result.TryGetValue(route.RouteId, out var compiled))
            {
                if (bool.TryParse(flag, out var on))
                {
                    result[route.RouteId] = compiled with { Provenance = on };
                }
                else
                {
                    problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteProvenanceMetadataKey}", "must be true or false");
                }
            }
        }

        // Tunnels are opt-in per route, and WebSocket is the only kind: its messages are framed, so
        // the gateway can count them and read what comes back to the agent. A route that inspects
        // bodies never opens one: the messages would pass uninspected.
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(RouteUpgradeMetadataKey, out var upgrade) != true || !result.TryGetValue(route.RouteId, out var compiled))
            {
                continue;
            }

            var path = $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteUpgradeMetadataKey}";
            if (!string.Equals(upgrade, "WebSocket", StringComparison.Ordinal))
            {
                problems.Add(path, "must be WebSocket, the only protocol upgrade the gateway lets through (leave it out for none)");
            }
            else if (compiled.Inspect != BodyKind.None)
            {
                problems.Add(path, $"a route that inspects bodies (Metadata:{RouteInspectMetadataKey}) never opens tunnels: their messages would not be inspected");
            }
            else
            {
                result[route.RouteId] = compiled with { WebSockets = true };
            }
        }

        return result.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Each route's <c>Metadata:ForwardHeaders</c>, if any, names only headers the gateway
    /// may forward: never a credential, an identity assertion, or a header addressed to the gateway.</summary>
    private static void CheckForwardHeaders(IReadOnlyList<RouteConfig> routes, string[] control, ConfigProblems problems)
    {
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(ForwardHeaders.MetadataKey, out var value) == true)
            {
                ForwardHeaders.Parse(value, control, out var errors);
                foreach (var error in errors)
                {
                    problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{ForwardHeaders.MetadataKey}", error);
                }
            }
        }
    }

    private static bool ClusterPresents(IReadOnlyList<ClusterConfig> clusters, string? clusterId, string credential) =>
        clusters.FirstOrDefault(c => string.Equals(c.ClusterId, clusterId, StringComparison.OrdinalIgnoreCase)) is { Metadata: { } metadata }
        && metadata.TryGetValue(ClientCertificateHttpClientFactory.ClusterMetadataKey, out var named)
        && string.Equals(named, credential, StringComparison.OrdinalIgnoreCase);

    private static AgentDirectory ReadAgents(
        IConfigurationSection section, IReadOnlySet<string> issuerNames, FrozenDictionary<string, Grant> grants, ConfigProblems problems)
    {
        var byIdentity = new Dictionary<AgentIdentityKey, Agent>();
        var byId = new Dictionary<string, Agent>(StringComparer.OrdinalIgnoreCase);
        var classes = new List<AgentClass>();
        var canonicalIssuer = issuerNames.ToDictionary(n => n, n => n, StringComparer.OrdinalIgnoreCase);
        foreach (var entry in section.GetChildren())
        {
            if (!CredentialName.IsValid(entry.Key))
            {
                problems.Add(entry.Path, $"agent id '{entry.Key}' must be letters, digits, '-', '_' or '.'");
                continue;
            }

            var s = SectionReader.Read<AgentSettings>(entry, problems);
            if (string.IsNullOrWhiteSpace(s.Owner))
            {
                problems.Add(entry.Path + ":Owner", "is required: every agent has someone who answers for it");
            }

            if (s.Identities.Length == 0 && s.Class is null)
            {
                problems.Add(entry.Path + ":Identities", "at least one identity is required, or the agent can never be recognised");
            }

            var agentGrants = new List<Grant>();
            for (var i = 0; i < s.Grants.Length; i++)
            {
                if (!grants.TryGetValue(s.Grants[i], out var grant))
                {
                    problems.Add($"{entry.Path}:Grants:{i}", $"names grant '{s.Grants[i]}', which is not configured under Gateway:Grants");
                    continue;
                }

                agentGrants.Add(grant);
            }

            var identities = new List<AgentIdentityKey>();
            for (var i = 0; i < s.Identities.Length; i++)
            {
                var identity = s.Identities[i];
                var path = $"{entry.Path}:Identities:{i}";
                if (ReadIdentity(identity, path, canonicalIssuer, problems) is not { } key)
                {
                    continue;
                }

                var (issuerName, subjectName) = (key.Issuer, key.Subject);
                if (byIdentity.TryGetValue(key, out var other) || identities.Contains(key))
                {
                    problems.Add(path, $"identity ({issuerName}, {subjectName}) already belongs to agent '{other?.Id ?? entry.Key}'");
                    continue;
                }

                identities.Add(key);
            }

            var agent = Agent.Create(entry.Key, s.Owner ?? string.Empty, s.Description, s.ExpiresAt, s.Grants, agentGrants) with
            {
                Identities = identities,
                RequireDpop = s.RequireDpop,
            };
            byId[entry.Key] = agent;
            foreach (var key in identities)
            {
                byIdentity[key] = agent;
            }

            if (s.Class is { } agentClass && ReadClass(entry.Path + ":Class", agentClass, agent, canonicalIssuer, problems) is { } compiled)
            {
                classes.Add(compiled);
            }
        }

        return new AgentDirectory(byIdentity.ToFrozenDictionary(), byId.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase)) { Classes = classes };
    }
}
