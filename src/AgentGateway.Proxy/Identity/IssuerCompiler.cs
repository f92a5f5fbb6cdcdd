using AgentGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// Compiles one <c>Gateway:Inbound:Issuers:{name}</c> entry into a <see cref="TrustedIssuer"/>:
/// where its keys come from (discovery or a JWKS address, fetched when a token first needs them,
/// never here), its exact <c>iss</c>, audiences, algorithms and token types.
/// </summary>
public static class IssuerCompiler
{
    private static readonly string[] DefaultTokenTypes = ["at+jwt"];

    /// <summary>Null when the entry has a problem (reported under its path).</summary>
    public static TrustedIssuer? Compile(IConfigurationSection entry, TimeSpan clockSkew, IssuerKeySources issuerKeys, ConfigProblems problems)
    {
        var s = SectionReader.Read<IssuerSettings>(entry, problems);
        s = s with { Algorithms = s.Algorithms ?? SigningAlgorithm.IssuerDefault, TokenTypes = s.TokenTypes ?? DefaultTokenTypes };
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
            if (HttpEndpoint.TryRead(entry.Path + ":Authority", s.Authority, problems, out var authority))
            {
                metadata = new Uri(authority!.AbsoluteUri.TrimEnd('/') + "/.well-known/openid-configuration");
                discovery = true;
            }

            iss = s.Issuer ?? s.Authority;
        }
        else if (s.JwksUri is not null)
        {
            HttpEndpoint.TryRead(entry.Path + ":JwksUri", s.JwksUri, problems, out metadata);
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
            if (!SigningAlgorithm.TryParse(s.Algorithms[i], out _))
            {
                problems.Add($"{entry.Path}:Algorithms:{i}", $"'{s.Algorithms[i]}' is not allowed; use asymmetric algorithms only: {SigningAlgorithm.List(", ")}");
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
}
