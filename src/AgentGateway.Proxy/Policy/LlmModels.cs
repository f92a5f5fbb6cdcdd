using AgentGateway.Proxy.Inspection;
using Microsoft.AspNetCore.WebUtilities;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// The models an LLM request names, read where its provider reads them: the body, the forwarded
/// path, the query. The request's own model may be named in several of these places only if they
/// all name the same one (a provider reads one of them, and which one is its business); each entry
/// of a batch names its own. A path that names a model in a shape the route's provider does not
/// read — another provider's shape, a Vertex endpoint whose model is not in the request — cannot be
/// decided, so it is refused rather than read one way when the upstream might read it another.
/// </summary>
public static class LlmModels
{
    /// <summary>Path segments that introduce a model in some provider's shape.</summary>
    private static readonly HashSet<string> Markers = new(StringComparer.OrdinalIgnoreCase)
    {
        "models", "model", "deployments", "tunedModels", "publishers", "endpoints",
    };

    /// <summary>Query parameters that name a model (OpenAI's and Azure's realtime APIs).</summary>
    private static readonly string[] QueryKeys = ["model", "deployment"];

    /// <summary>What a request names: its models (distinct), or why they cannot be decided.</summary>
    public sealed record Reading(IReadOnlyList<string> Models, string? Ambiguity);

    public static Reading Read(LlmProvider provider, string method, string path, string? query, InspectedBody? body)
    {
        var (pathModel, pathWhy) = ReadPath(provider, method, path);
        if (pathWhy is not null)
        {
            return new Reading([], pathWhy);
        }

        // The request's own model, wherever it is named; then the entries of a batch.
        var own = new List<(string Where, string Model)>();
        if (pathModel is not null)
        {
            own.Add(("the path", pathModel));
        }

        if (!string.IsNullOrEmpty(query))
        {
            // Some servers (older Python among them) split a query on ';' as well as '&'.
            if (query.Contains(';', StringComparison.Ordinal))
            {
                return new Reading([], "the query has a ';', which some servers read as a parameter separator");
            }

            var parameters = QueryHelpers.ParseQuery(query);
            foreach (var key in QueryKeys)
            {
                if (parameters.TryGetValue(key, out var values))
                {
                    if (values.Count != 1 || string.IsNullOrEmpty(values[0]))
                    {
                        return new Reading([], $"the query names '{key}' {values.Count} times");
                    }

                    own.Add(($"the query's '{key}'", values[0]!));
                }
            }
        }

        var batch = new List<(string Where, string Model)>();
        foreach (var (field, model) in body?.Models ?? [])
        {
            (field is "model" or "modelId" ? own : batch).Add(($"the body's '{field}'", Normalise(provider, model)));
        }

        foreach (var (where, model) in own.Concat(batch))
        {
            if (Identifiers.AmbiguousModel(model) is { } why)
            {
                return new Reading([], $"{where} names a model that cannot be decided on ({why})");
            }
        }

        if (own.Select(m => m.Model).Distinct(StringComparer.Ordinal).Count() > 1)
        {
            return new Reading([], "the request names different models: " + string.Join(", ", own.Select(m => $"{m.Where} '{m.Model}'")));
        }

        return new Reading([.. own.Concat(batch).Select(m => m.Model).Distinct(StringComparer.Ordinal)], null);
    }

    /// <summary>The model the forwarded path names for <paramref name="provider"/>, if any; or why
    /// the path cannot be decided. The whole path is held to the shared path rule, and every
    /// model-introducing segment must be one the provider's shape reads.</summary>
    private static (string? Model, string? Ambiguity) ReadPath(LlmProvider provider, string method, string path)
    {
        var segments = path.Length > 1 && path[0] == '/' ? path[1..].Split('/') : [];
        var read = new bool[segments.Length];
        string? model = null;
        string? why = null;

        // Marker at i followed by a named segment (a trailing '/' names nothing).
        bool Names(int i) => i + 1 < segments.Length && segments[i + 1].Length > 0;
        bool Is(int i, string marker) => string.Equals(segments[i], marker, StringComparison.OrdinalIgnoreCase);

        void Take(int from, int count, string name)
        {
            if (model is not null)
            {
                why ??= "the path names a model twice";
            }

            model = name;
            for (var k = from; k < from + count; k++)
            {
                read[k] = true;
            }
        }

        for (var i = 0; i < segments.Length && why is null; i++)
        {
            if (read[i] || !Names(i))
            {
                continue;
            }

            switch (provider)
            {
                case LlmProvider.AzureOpenAI when Is(i, "deployments"):
                    Take(i, 2, segments[i + 1]);
                    break;
                case LlmProvider.Bedrock when Is(i, "model"):
                    // The AWS SDKs percent-encode the model id; the server decodes all but %2F,
                    // which the forwarder re-encodes (%252F), so an ARN's '/' never reaches Bedrock
                    // as sent: an id with '%' left is refused as a model name.
                    Take(i, 2, segments[i + 1]);
                    break;
                case LlmProvider.Gemini when Is(i, "models") || Is(i, "tunedModels"):
                    Take(i, 2, (Is(i, "tunedModels") ? "tunedModels/" : "") + BeforeMethod(segments[i + 1]));
                    break;
                case LlmProvider.VertexAI when Is(i, "publishers") && i + 3 < segments.Length && Is(i + 2, "models"):
                    Take(i, 4, segments[i + 1] + "/" + BeforeMethod(segments[i + 3]));
                    break;
                case LlmProvider.VertexAI when Is(i, "models"):
                    Take(i, 2, BeforeMethod(segments[i + 1]));
                    break;
                case LlmProvider.VertexAI when Is(i, "endpoints"):
                    // The OpenAI-compatible endpoint names its model in the body; any other endpoint
                    // serves whatever model is deployed behind it, which the request does not name.
                    if (segments[i + 1] == "openapi")
                    {
                        read[i] = read[i + 1] = true;
                    }
                    else
                    {
                        why = "the path names a Vertex AI endpoint, whose model the request does not name";
                    }

                    break;
                case LlmProvider.OpenAI or LlmProvider.Anthropic or LlmProvider.AzureOpenAI when Is(i, "models")
                    && i + 2 == segments.Length && (method is "GET" or "HEAD" or "DELETE"):
                    // Reading or deleting one model; the whole segment is its name (fine-tuned names have ':').
                    Take(i, 2, segments[i + 1]);
                    break;
            }
        }

        if (why is not null)
        {
            return (null, why);
        }

        for (var i = 0; i < segments.Length; i++)
        {
            if (!read[i] && Markers.Contains(segments[i]) && Names(i))
            {
                return (null, $"the path names a model ('{PolicyEngine.Printable(segments[i])}/…') in a shape the route's provider ({provider}) does not read");
            }
        }

        if (Identifiers.AmbiguousPath(path) is { } ambiguity)
        {
            return (null, $"the path is ambiguous ({ambiguity})");
        }

        return (model, null);
    }

    /// <summary>Google's custom methods follow the model: <c>gemini-2.5-pro:generateContent</c>. Its
    /// model names have no ':'.</summary>
    private static string BeforeMethod(string segment)
    {
        var colon = segment.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? segment : segment[..colon];
    }

    /// <summary>A body's model in the form the path names it: Gemini bodies say <c>models/{model}</c>;
    /// Vertex bodies may give the full resource name.</summary>
    private static string Normalise(LlmProvider provider, string model)
    {
        switch (provider)
        {
            case LlmProvider.Gemini when model.StartsWith("models/", StringComparison.Ordinal):
                return model["models/".Length..];
            case LlmProvider.VertexAI:
                var parts = model.Split('/');
                var publisher = Array.IndexOf(parts, "publishers");
                if (publisher >= 0 && publisher + 4 == parts.Length && parts[publisher + 2] == "models")
                {
                    return parts[publisher + 1] + "/" + parts[publisher + 3];
                }

                return parts is ["models", var bare] ? bare : model;
            default:
                return model;
        }
    }
}
