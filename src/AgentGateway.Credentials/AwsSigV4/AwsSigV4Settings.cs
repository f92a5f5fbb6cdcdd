using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.AwsSigV4;

/// <summary>
/// <c>Kind: AwsSigV4</c>: requests to an AWS API (Amazon Bedrock, S3, API Gateway, …) signed with
/// Signature Version 4 by the gateway's own AWS identity. One entry is one signing scope — a
/// region and a service, as an AWS SDK client has — so two regions are two entries, which may
/// name the same role (their credentials are fetched and cached once).
/// </summary>
public sealed record AwsSigV4Settings
{
    public string? Kind { get; init; }

    /// <summary>The region the signature is scoped to, e.g. <c>us-east-1</c>.</summary>
    public string? Region { get; init; }

    /// <summary>The service's signing name, e.g. <c>bedrock</c> (Bedrock runtime too), <c>s3</c>, <c>execute-api</c>.</summary>
    public string? Service { get; init; }

    /// <summary>A role to assume: with <see cref="WebIdentityToken"/> by AssumeRoleWithWebIdentity,
    /// otherwise by AssumeRole with the credentials of the SDK's default chain. Absent: the
    /// default chain's credentials themselves (environment, profile, web identity from
    /// <c>AWS_WEB_IDENTITY_TOKEN_FILE</c>/<c>AWS_ROLE_ARN</c>, container, instance profile).</summary>
    public string? RoleArn { get; init; }

    /// <summary>The OIDC token exchanged for the role (<c>file:</c> as Kubernetes projects it);
    /// read again at every fetch, so a rotated token is used.</summary>
    public string? WebIdentityToken { get; init; }

    public string RoleSessionName { get; init; } = "agentgateway";

    /// <summary>AssumeRole only: the external id the role's trust policy asks for.</summary>
    public string? ExternalId { get; init; }

    /// <summary>How long an assumed role's credentials are asked to live (15 min to 12 h).</summary>
    public TimeSpan SessionDuration { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The STS endpoint for the role calls; absent: the regional endpoint of <see cref="Region"/>
    /// (or what the SDK's own settings name, e.g. <c>AWS_ENDPOINT_URL_STS</c>).</summary>
    public string? StsEndpoint { get; init; }

    /// <summary><c>Signed</c> (the body's SHA-256 is signed, so the body is read before it is
    /// sent) or <c>Unsigned</c> (<c>UNSIGNED-PAYLOAD</c>: the body streams; only services that
    /// accept it, such as S3).</summary>
    public string Payload { get; init; } = nameof(AwsPayloadSigning.Signed);

    /// <summary>With <c>Signed</c>: the largest body signed (read into memory); a larger one is refused with 413.</summary>
    public long? MaxBodyBytes { get; init; }

    public TimeSpan RefreshBeforeExpiry { get; init; } = TimeSpan.FromMinutes(5);

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
