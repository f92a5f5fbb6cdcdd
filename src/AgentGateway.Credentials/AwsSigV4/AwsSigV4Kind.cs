using System.Text.RegularExpressions;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.AwsSigV4;

/// <summary><c>Kind: AwsSigV4</c>: requests to AWS APIs signed with Signature Version 4.</summary>
internal sealed partial class AwsSigV4Kind(CredentialFingerprint fingerprint, TimeProvider time, ILoggerFactory loggers)
    : CredentialKindBase<AwsSigV4Settings, AwsSigV4Options>
{
    /// <summary>The kind's name, defined here rather than in the broker: a kind is its folder.</summary>
    public static CredentialKind Name { get; } = new("AwsSigV4");

    /// <summary>Signed bodies are read into memory before they are sent; this bounds the default.</summary>
    public const long DefaultMaxBodyBytes = 10 * 1024 * 1024;

    /// <summary>The most an operator may let one request hold in memory for its signature.</summary>
    public const long LargestMaxBodyBytes = 1024L * 1024 * 1024;

    public override CredentialKind Kind => Name;

    protected override AwsSigV4Options? Validate(string name, string path, AwsSigV4Settings s, ConfigProblems problems)
    {
        var ok = Check(path + ":Region", s.Region, RegionPattern(), "is required: the region the signature is scoped to, e.g. us-east-1", problems);
        ok &= Check(path + ":Service", s.Service, ServicePattern(), "is required: the service's signing name, e.g. bedrock, s3 or execute-api", problems);

        if (s.RoleArn is not null && !RoleArnPattern().IsMatch(s.RoleArn))
        {
            problems.Add(path + ":RoleArn", "must be an IAM role ARN (arn:aws:iam::123456789012:role/name)");
            ok = false;
        }

        SecretReference? webIdentity = null;
        if (s.WebIdentityToken is not null)
        {
            if (CredentialConfigReader.TryReadSecret(path + ":WebIdentityToken", s.WebIdentityToken, problems, out var reference))
            {
                webIdentity = reference;
            }
            else
            {
                ok = false;
            }

            if (s.RoleArn is null)
            {
                problems.Add(path + ":WebIdentityToken", "needs RoleArn: the role the token is exchanged for");
                ok = false;
            }

            ok &= CredentialConfigReader.Unused(path + ":ExternalId", s.ExternalId, "AssumeRoleWithWebIdentity takes no external id", problems);
        }

        if (s.RoleArn is null)
        {
            // Without a role these would silently do nothing; the operator believes they are in force.
            ok &= CredentialConfigReader.Unused(path + ":ExternalId", s.ExternalId, "it is sent only when RoleArn is assumed", problems);
            ok &= CredentialConfigReader.Unused(path + ":StsEndpoint", s.StsEndpoint, "STS is called only when RoleArn is assumed", problems);
        }

        if (!RoleSessionNamePattern().IsMatch(s.RoleSessionName))
        {
            problems.Add(path + ":RoleSessionName", "must be 2 to 64 characters of letters, digits and =,.@_-");
            ok = false;
        }

        if (s.ExternalId is not null && !ExternalIdPattern().IsMatch(s.ExternalId))
        {
            problems.Add(path + ":ExternalId", "must be 2 to 1224 characters of letters, digits and =,.@:/_-");
            ok = false;
        }

        if (s.SessionDuration < TimeSpan.FromMinutes(15) || s.SessionDuration > TimeSpan.FromHours(12))
        {
            problems.Add(path + ":SessionDuration", "must be between 00:15:00 and 12:00:00 (what STS accepts)");
            ok = false;
        }

        Uri? sts = null;
        if (s.StsEndpoint is not null)
        {
            ok &= HttpEndpoint.TryRead(path + ":StsEndpoint", s.StsEndpoint, problems, out sts);
        }

        if (!Enum.TryParse<AwsPayloadSigning>(s.Payload, ignoreCase: false, out var payload) || !Enum.IsDefined(payload))
        {
            problems.Add(path + ":Payload", $"'{s.Payload}' is not one of: {string.Join(", ", Enum.GetNames<AwsPayloadSigning>())}");
            ok = false;
        }

        long? maxBody = null;
        if (payload == AwsPayloadSigning.Signed)
        {
            maxBody = s.MaxBodyBytes ?? DefaultMaxBodyBytes;
            if (maxBody < 0 || maxBody > LargestMaxBodyBytes)
            {
                problems.Add(path + ":MaxBodyBytes", $"must be between 0 and {LargestMaxBodyBytes} (1 GiB): a signed body is held in memory");
                ok = false;
            }
        }
        else if (s.MaxBodyBytes is not null)
        {
            problems.Add(path + ":MaxBodyBytes", "is not used here: with Payload Unsigned the body is not read");
            ok = false;
        }

        ok &= CredentialConfigReader.CheckTokenTiming(path, s.RefreshBeforeExpiry, s.Timeout, problems);
        if (!ok)
        {
            return null;
        }

        var identity = new AwsIdentity(s.RoleArn, webIdentity, s.RoleSessionName, s.ExternalId, s.SessionDuration, sts);
        return new AwsSigV4Options(name, s.Region!, s.Service!, identity, payload, maxBody, s.RefreshBeforeExpiry, s.Timeout);
    }

    protected override ICredentialSource? Build(AwsSigV4Options options, CredentialBuildContext context, ConfigProblems problems)
    {
        // The token itself is read at every fetch (it rotates); here only that it can be read.
        if (options.Identity.WebIdentityToken is { } token && !SecretResolver.TryResolve(token, out _, out var error))
        {
            problems.Add(context.Path + ":WebIdentityToken", error!);
            return null;
        }

        return new AwsSigV4Source(options, context.Cache, fingerprint, time, loggers.CreateLogger<AwsSigV4Source>());
    }

    private static bool Check(string path, string? value, Regex pattern, string missing, ConfigProblems problems)
    {
        if (string.IsNullOrEmpty(value))
        {
            problems.Add(path, missing);
            return false;
        }

        if (!pattern.IsMatch(value))
        {
            // The value is a name, not a secret, but problems never quote values.
            problems.Add(path, "must be lower-case letters, digits and '-', as AWS writes it");
            return false;
        }

        return true;
    }

    [GeneratedRegex(@"^[a-z]{2,}(-[a-z0-9]+)+\z", RegexOptions.CultureInvariant)]
    private static partial Regex RegionPattern();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9-]{0,62}\z", RegexOptions.CultureInvariant)]
    private static partial Regex ServicePattern();

    [GeneratedRegex(@"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}\z", RegexOptions.CultureInvariant)]
    private static partial Regex RoleArnPattern();

    [GeneratedRegex(@"^[A-Za-z0-9+=,.@_-]{2,64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex RoleSessionNamePattern();

    [GeneratedRegex(@"^[A-Za-z0-9+=,.@:/_-]{2,1224}\z", RegexOptions.CultureInvariant)]
    private static partial Regex ExternalIdPattern();
}
