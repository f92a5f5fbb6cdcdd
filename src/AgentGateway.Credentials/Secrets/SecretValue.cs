namespace AgentGateway.Credentials.Secrets;

/// <summary>
/// A resolved secret. It formats as a placeholder so that string interpolation, structured
/// logging or a debugger display can never reveal it by accident; only <see cref="Reveal"/>
/// gives the value, and only the code that puts it on the wire calls it.
/// </summary>
public sealed class SecretValue
{
    private readonly string _value;

    public SecretValue(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        _value = value;
    }

    public string Reveal() => _value;

    public override string ToString() => "[secret]";
}
