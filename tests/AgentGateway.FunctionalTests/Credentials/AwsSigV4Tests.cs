using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>
/// The AWS credential chain of the process: a static access key in the environment, as the
/// SDK's default chain reads it first. Set once, because the SDK keeps what its chain found; no
/// instance metadata endpoint is ever asked (nothing but loopback is reached).
/// </summary>
public static class AwsEnvironment
{
    public static string AccessKeyId { get; } = "AKIAAGWTEST" + Convert.ToHexString(RandomNumberGenerator.GetBytes(5));

    public static string SecretKey { get; } = "env-secret-canary-" + Guid.NewGuid().ToString("N");

    private static readonly Lazy<bool> Set = new(() =>
    {
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", AccessKeyId);
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", SecretKey);
        Environment.SetEnvironmentVariable("AWS_SESSION_TOKEN", null);
        Environment.SetEnvironmentVariable("AWS_EC2_METADATA_DISABLED", "true");
        return true;
    });

    public static void Ensure() => _ = Set.Value;
}

/// <summary>
/// <c>Kind: AwsSigV4</c> against an AWS API on a real Kestrel socket, every signature checked by
/// <see cref="SigV4Verifier"/> — an implementation of the specification that shares nothing with
/// the gateway or the AWS SDK — with the secret key the gateway should have used: the
/// environment's (the SDK's default chain), or the one a test STS handed out for a role
/// (AssumeRoleWithWebIdentity, AssumeRole), the SDK's STS client pointed at it by its service URL.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class AwsSigV4Tests(GatewayFixture fx) : IAsyncLifetime
{
    private const string RoleArn = "arn:aws:iam::123456789012:role/agentgateway-bedrock";
    private const string BedrockPath = "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/invoke";
    private const string Body = """{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}""";

    private readonly string _agentCanary = "agent-aws-canary-" + Guid.NewGuid().ToString("N");
    private AwsUpstream _aws = null!;
    private TestSts _sts = null!;

    public async Task InitializeAsync()
    {
        AwsEnvironment.Ensure();
        _aws = await AwsUpstream.StartAsync();
        _sts = await TestSts.StartAsync();
        await fx.ResetAsync();
    }

    public async Task DisposeAsync()
    {
        await _aws.DisposeAsync();
        await _sts.DisposeAsync();
    }

    [Fact]
    public async Task A_bedrock_request_is_signed_with_the_default_chains_key_over_what_is_forwarded()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config(Credential()));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath + "?trace=ENABLED&X-Amz-Expires=300&x-amz-algorithm=AWS4-HMAC-SHA256", Body, agentSigning: true);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var received = Assert.Single(_aws.Received);
        var verdict = SigV4Verifier.Verify(received, AwsEnvironment.SecretKey);
        Assert.True(verdict.Valid, verdict.Error + "\n" + verdict.CanonicalRequest);
        Assert.Equal((AwsEnvironment.AccessKeyId, "us-east-1", "bedrock"), (verdict.Claim!.AccessKeyId, verdict.Claim.Region, verdict.Claim.Service));
        // The path as forwarded (the route's prefix removed), its ':' encoded once on the wire and twice in the signature.
        Assert.Equal("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke?trace=ENABLED", received.Target);
        Assert.StartsWith("POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke\ntrace=ENABLED\n", verdict.CanonicalRequest, StringComparison.Ordinal);
        Assert.Equal(Sha256(Body), received.Header("X-Amz-Content-Sha256"));
        Assert.Equal(Body, Encoding.UTF8.GetString(received.Body));
        Assert.Null(received.Header("X-Amz-Security-Token"));
        Assert.DoesNotContain(received.Headers, h => h.Key.Replace('_', '-').StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase) && h.Key.Contains('_', StringComparison.Ordinal));
        AssertNothingOfTheAgentNorSecretReached(agentToken, AwsEnvironment.SecretKey);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(AwsEnvironment.SecretKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_role_is_assumed_with_a_web_identity_from_the_test_sts_once_and_its_session_signs()
    {
        var webIdentity = "eyJ.web-identity-canary-" + Guid.NewGuid().ToString("N");
        var tokenFile = Path.Combine(Path.GetTempPath(), $"agentgateway-web-identity-{Guid.NewGuid():N}.jwt");
        await File.WriteAllTextAsync(tokenFile, webIdentity + "\n");
        try
        {
            var credential = Credential();
            credential["RoleArn"] = RoleArn;
            credential["WebIdentityToken"] = "file:" + tokenFile;
            credential["RoleSessionName"] = "gateway-test";
            credential["StsEndpoint"] = _sts.Url;
            await using var gateway = await GatewayInstance.StartAsync(Config(credential));
            var agentToken = await fx.AgentTokenAsync();

            using var first = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath, Body, agentSigning: true);
            using var second = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath, Body, agentSigning: false);

            Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            var call = Assert.Single(_sts.Calls);
            Assert.Equal("AssumeRoleWithWebIdentity", call.Action);
            Assert.Equal(webIdentity, call.Form["WebIdentityToken"]);
            Assert.Equal(RoleArn, call.Form["RoleArn"]);
            Assert.Equal("gateway-test", call.Form["RoleSessionName"]);
            Assert.Equal("3600", call.Form["DurationSeconds"]);
            Assert.Null(call.Request.Header("Authorization"));
            foreach (var received in _aws.Received)
            {
                var verdict = SigV4Verifier.Verify(received, call.Answer.SecretKey);
                Assert.True(verdict.Valid, verdict.Error + "\n" + verdict.CanonicalRequest);
                Assert.Equal(call.Answer.AccessKeyId, verdict.Claim!.AccessKeyId);
                Assert.Equal(call.Answer.SessionToken, received.Header("X-Amz-Security-Token"));
                Assert.Contains("x-amz-security-token", verdict.Claim.SignedHeaders);
            }

            Assert.Equal(2, _aws.Received.Count);
            AssertNothingOfTheAgentNorSecretReached(agentToken, call.Answer.SecretKey);
            _aws.AssertNeverSaw(webIdentity);
            Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(call.Answer.SecretKey, StringComparison.Ordinal) || l.Contains(call.Answer.SessionToken, StringComparison.Ordinal) || l.Contains(webIdentity, StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    [Fact]
    public async Task A_role_is_assumed_with_the_default_chains_key_and_its_external_id()
    {
        var credential = Credential();
        credential["RoleArn"] = RoleArn;
        credential["ExternalId"] = "agw-external-id";
        credential["StsEndpoint"] = _sts.Url;
        await using var gateway = await GatewayInstance.StartAsync(Config(credential));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath, Body, agentSigning: true);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var call = Assert.Single(_sts.Calls);
        Assert.Equal("AssumeRole", call.Action);
        Assert.Equal("agw-external-id", call.Form["ExternalId"]);
        // The SDK's STS call is itself signed with the environment's key, for STS in the entry's region.
        var stsVerdict = SigV4Verifier.Verify(call.Request, AwsEnvironment.SecretKey);
        Assert.True(stsVerdict.Valid, stsVerdict.Error + "\n" + stsVerdict.CanonicalRequest);
        Assert.Equal((AwsEnvironment.AccessKeyId, "us-east-1", "sts"), (stsVerdict.Claim!.AccessKeyId, stsVerdict.Claim.Region, stsVerdict.Claim.Service));
        var verdict = SigV4Verifier.Verify(Assert.Single(_aws.Received), call.Answer.SecretKey);
        Assert.True(verdict.Valid, verdict.Error + "\n" + verdict.CanonicalRequest);
        AssertNothingOfTheAgentNorSecretReached(agentToken, call.Answer.SecretKey);
        _aws.AssertNeverSaw(AwsEnvironment.SecretKey);
    }

    [Fact]
    public async Task A_body_larger_than_the_signer_signs_is_refused_with_413_streamed_or_not_and_nothing_is_forwarded()
    {
        var credential = Credential();
        credential["MaxBodyBytes"] = 1024;
        await using var gateway = await GatewayInstance.StartAsync(Config(credential));
        var agentToken = await fx.AgentTokenAsync();
        var large = new string('x', 4096);

        using var streamed = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath, large, agentSigning: false, streamed: true);
        using var declared = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath, large, agentSigning: false);

        await ProblemAssert.IsProblemAsync(streamed, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
        await ProblemAssert.IsProblemAsync(declared, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
        Assert.Empty(_aws.Received);

        using var small = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock" + BedrockPath, Body, agentSigning: false, streamed: true);

        Assert.True(small.StatusCode == HttpStatusCode.OK, await small.Content.ReadAsStringAsync());
        var received = Assert.Single(_aws.Received);
        Assert.True(SigV4Verifier.Verify(received, AwsEnvironment.SecretKey).Valid);
        Assert.Equal(Body, Encoding.UTF8.GetString(received.Body));
        AssertNothingOfTheAgentNorSecretReached(agentToken, AwsEnvironment.SecretKey);
    }

    [Fact]
    public async Task With_unsigned_payload_an_s3_upload_streams_and_its_path_is_signed_as_s3_reads_it()
    {
        var credential = Credential();
        credential["Service"] = "s3";
        credential["Payload"] = "Unsigned";
        await using var gateway = await GatewayInstance.StartAsync(Config(credential, name: "s3"));
        var agentToken = await fx.AgentTokenAsync();
        var content = string.Concat(Enumerable.Repeat("0123456789abcdef", 8192));

        using var response = await SendAsync(gateway, agentToken, HttpMethod.Put, "/s3/reports/2026%20q3//summary.txt", content, agentSigning: true, streamed: true);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var received = Assert.Single(_aws.Received);
        var verdict = SigV4Verifier.Verify(received, AwsEnvironment.SecretKey);
        Assert.True(verdict.Valid, verdict.Error + "\n" + verdict.CanonicalRequest);
        Assert.Equal("s3", verdict.Claim!.Service);
        Assert.Equal("UNSIGNED-PAYLOAD", received.Header("X-Amz-Content-Sha256"));
        Assert.Equal("/reports/2026%20q3//summary.txt", received.Target);
        Assert.Equal(content, Encoding.UTF8.GetString(received.Body));
        AssertNothingOfTheAgentNorSecretReached(agentToken, AwsEnvironment.SecretKey);
    }

    [Fact]
    public async Task A_path_the_service_would_normalise_differently_from_how_it_is_signed_is_refused_unsent()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config(Credential()));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await SendAsync(gateway, agentToken, HttpMethod.Post, "/bedrock/model//invoke", Body, agentSigning: false);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
        Assert.Contains("empty segment", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(_aws.Received);
    }

    [Fact]
    public void The_verifier_accepts_the_specifications_own_examples_and_refuses_them_altered()
    {
        // AWS's published examples: the test suite's get-vanilla and the IAM ListUsers walk-through,
        // both with the documentation's example key, on 2015-08-30 12:36:00 UTC.
        const string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        var vanilla = new SigV4Verifier.Received("GET", "/", [
            new("Host", "example.amazonaws.com"),
            new("X-Amz-Date", "20150830T123600Z"),
            new("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ], []);
        var listUsers = new SigV4Verifier.Received("GET", "/?Action=ListUsers&Version=2010-05-08", [
            new("Host", "iam.amazonaws.com"),
            new("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            new("X-Amz-Date", "20150830T123600Z"),
            new("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"),
        ], []);

        Assert.True(SigV4Verifier.Verify(vanilla, secret).Valid, SigV4Verifier.Verify(vanilla, secret).CanonicalRequest);
        Assert.True(SigV4Verifier.Verify(listUsers, secret).Valid, SigV4Verifier.Verify(listUsers, secret).CanonicalRequest);
        Assert.False(SigV4Verifier.Verify(vanilla with { Target = "/other" }, secret).Valid);
        Assert.False(SigV4Verifier.Verify(listUsers with { Target = "/?Action=ListUsers&Version=2010-05-09" }, secret).Valid);
        Assert.False(SigV4Verifier.Verify(vanilla, secret + "x").Valid);
        Assert.False(SigV4Verifier.Verify(vanilla with { Body = [1] }, secret).Valid);
        Assert.False(SigV4Verifier.Verify(vanilla with { Headers = [.. vanilla.Headers, new("X-Amz-Meta-Unsigned", "1")] }, secret).Valid);
        Assert.Equal("/a/b%252F%2520c", SigV4Verifier.CanonicalUri("/a/./x/../b%2F%20c", s3: false));
        Assert.Equal("/a/./b%2Fc", SigV4Verifier.CanonicalUri("/a/./b%2fc", s3: true));
        Assert.Equal("a=%2B&a=1&b=%20", SigV4Verifier.CanonicalQuery("b=%20&a=1&a=+"));
    }

    private JsonObject Config(JsonObject credential, string name = "bedrock") =>
        fx.Config(withRedis: false).WithCluster("aws", _aws.Url).WithHop(name, credential, cluster: "aws");

    private static JsonObject Credential() => new()
    {
        ["Kind"] = "AwsSigV4",
        ["Region"] = "us-east-1",
        ["Service"] = "bedrock",
    };

    /// <summary>A request as the agent, which also tries to sign it itself when <paramref name="agentSigning"/>:
    /// its own session token, date and body hash, in spellings an upstream could read as AWS's.</summary>
    private async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, string agentToken, HttpMethod method, string target, string body, bool agentSigning, bool streamed = false)
    {
        using var request = new HttpRequestMessage(method, target);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", agentToken);
        if (agentSigning)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Security-Token", _agentCanary);
            request.Headers.TryAddWithoutValidation("X_Amz_Date", "20200101T000000Z");
            request.Headers.TryAddWithoutValidation("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
            request.Headers.TryAddWithoutValidation("X-Amz-Meta-Agent", _agentCanary);
        }

        var bytes = Encoding.UTF8.GetBytes(body);
        request.Content = streamed ? new StreamContent(new UnknownLengthStream(bytes)) : new ByteArrayContent(bytes);
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return await gateway.Client.SendAsync(request);
    }

    private void AssertNothingOfTheAgentNorSecretReached(string agentToken, string secretKey)
    {
        _aws.AssertNeverSaw(agentToken);
        _aws.AssertNeverSaw(_agentCanary);
        _aws.AssertNeverSaw(secretKey);
    }

    private static string Sha256(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant();

    /// <summary>A body whose length the client cannot know in advance: sent chunked, without Content-Length.</summary>
    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes, writable: false)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
