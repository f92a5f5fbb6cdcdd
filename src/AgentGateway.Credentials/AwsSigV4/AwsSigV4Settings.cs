using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.AwsSigV4;

/// <summary>
/// <c>Kind: AwsSigV4</c>: requests to an AWS API (Amazon Bedrock, S3, API Gateway, …) signed with
/// Signature Version 4 by the gateway's own AWS identity. One entry is one signing scope — a
/// region and a service, as an AWS SDK client has — so two regions are two entries, which may
/// name the same role (their credentials are fetched and cached once).
/// </summary>
[Setting("Requests to an AWS API signed with Signature Version 4 as they are sent (final method, path, query, host and body). One entry is one signing scope; entries for other regions may name the same role and share its credentials. The agent's Authorization and every X-Amz-* header and query parameter are removed first.")]
public sealed record AwsSigV4Settings
{
    public string? Kind { get; init; }

    /// <summary>The region the signature is scoped to, e.g. <c>us-east-1</c>.</summary>
    [Setting("The region the signature is scoped to, e.g. us-east-1.", Required = true, Pattern = @"^[a-z]{2,}(-[a-z0-9]+)+$")]
    public string? Region { get; init; }

    /// <summary>The service's signing name, e.g. <c>bedrock</c> (Bedrock runtime too), <c>s3</c>, <c>execute-api</c>.</summary>
    [Setting("The service's signing name: bedrock (also for bedrock-runtime), s3, execute-api, es, …", Required = true, Pattern = @"^[a-z0-9][a-z0-9-]{0,62}$")]
    public string? Service { get; init; }

    /// <summary>A role to assume: with <see cref="WebIdentityToken"/> by AssumeRoleWithWebIdentity,
    /// otherwise by AssumeRole with the credentials of the SDK's default chain. Absent: the
    /// default chain's credentials themselves (environment, profile, web identity from
    /// <c>AWS_WEB_IDENTITY_TOKEN_FILE</c>/<c>AWS_ROLE_ARN</c>, container, instance profile).</summary>
    [Setting("A role to assume: with WebIdentityToken by AssumeRoleWithWebIdentity, otherwise by AssumeRole with the default chain's credentials. Absent: the AWS SDK's default credential chain (environment, profile, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, container, instance profile).", Pattern = @"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")]
    public string? RoleArn { get; init; }

    /// <summary>The OIDC token exchanged for the role (<c>file:</c> as Kubernetes projects it);
    /// read again at every fetch, so a rotated token is used.</summary>
    [Setting("With RoleArn: the OIDC token exchanged for it, e.g. file:/var/run/secrets/eks.amazonaws.com/serviceaccount/token. Read again at every fetch.", Format = SettingFormat.SecretReference)]
    public string? WebIdentityToken { get; init; }

    [Setting(Pattern = @"^[A-Za-z0-9+=,.@_-]{2,64}$")]
    public string RoleSessionName { get; init; } = "agentgateway";

    /// <summary>AssumeRole only: the external id the role's trust policy asks for.</summary>
    [Setting("AssumeRole only: the external id the role's trust policy requires.", Pattern = @"^[A-Za-z0-9+=,.@:/_-]{2,1224}$")]
    public string? ExternalId { get; init; }

    /// <summary>How long an assumed role's credentials are asked to live (15 min to 12 h).</summary>
    [Setting("Asked of STS for an assumed role (00:15:00 to 12:00:00).")]
    public TimeSpan SessionDuration { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The STS endpoint for the role calls; absent: the regional endpoint of <see cref="Region"/>
    /// (or what the SDK's own settings name, e.g. <c>AWS_ENDPOINT_URL_STS</c>).</summary>
    [Setting("With RoleArn: the STS endpoint (https, except loopback). Default: the region's own.", Format = SettingFormat.Uri)]
    public string? StsEndpoint { get; init; }

    /// <summary><c>Signed</c> (the body's SHA-256 is signed, so the body is read before it is
    /// sent) or <c>Unsigned</c> (<c>UNSIGNED-PAYLOAD</c>: the body streams; only services that
    /// accept it, such as S3).</summary>
    [Setting("Signed: the body's SHA-256 is signed (the body is read first, up to MaxBodyBytes). Unsigned: UNSIGNED-PAYLOAD, the body streams — only for services that accept it, such as S3.", AllowedValues = ["Signed", "Unsigned"])]
    public string Payload { get; init; } = nameof(AwsPayloadSigning.Signed);

    /// <summary>With <c>Signed</c>: the largest body signed (read into memory); a larger one is refused with 413.</summary>
    [Setting("Payload Signed: the largest body signed (default 10485760, 10 MiB); a larger one is refused with 413 before anything is forwarded.", Minimum = 0, Maximum = 1073741824)]
    public long? MaxBodyBytes { get; init; }

    public TimeSpan RefreshBeforeExpiry { get; init; } = TimeSpan.FromMinutes(5);

    [Setting("Bounds the credential chain or the STS call.")]
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>An <see cref="AwsSigV4Settings"/> entry, validated.</summary>
/// <param name="Identity">Where the credentials come from.</param>
/// <param name="MaxBodyBytes">The largest body signed; null with <see cref="AwsPayloadSigning.Unsigned"/>.</param>
public sealed record AwsSigV4Options(
    string Name,
    string Region,
    string Service,
    AwsIdentity Identity,
    AwsPayloadSigning Payload,
    long? MaxBodyBytes,
    TimeSpan RefreshBeforeExpiry,
    TimeSpan Timeout)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => AwsSigV4Kind.Name;
}

/// <summary>Where an entry's AWS credentials come from. Region and service are not part of it:
/// entries that differ only in those share credentials.</summary>
/// <param name="RoleArn">The role assumed; null for the default chain's credentials as they are.</param>
/// <param name="WebIdentityToken">With a role: the OIDC token exchanged for it (AssumeRoleWithWebIdentity).</param>
/// <param name="StsEndpoint">The STS endpoint; null for the region's own.</param>
public sealed record AwsIdentity(
    string? RoleArn,
    SecretReference? WebIdentityToken,
    string RoleSessionName,
    string? ExternalId,
    TimeSpan SessionDuration,
    Uri? StsEndpoint)
{
    public override string ToString() => RoleArn is null
        ? "the SDK's default credential chain"
        : $"role {RoleArn} by {(WebIdentityToken is null ? "AssumeRole" : "AssumeRoleWithWebIdentity")}";
}

// The members are the configuration's words (Payload: Signed or Unsigned), not type names.
#pragma warning disable CA1720
public enum AwsPayloadSigning
{
    /// <summary>The body's SHA-256 is part of the signature.</summary>
    Signed,

    /// <summary><c>UNSIGNED-PAYLOAD</c>: the body streams unread; for services that accept it (S3).</summary>
    Unsigned,
}
#pragma warning restore CA1720
