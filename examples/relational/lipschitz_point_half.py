from verify.spec import linf_ball, lipschitz

# half the constant verify certifies there (about 3.35): a pair breaks it
PROPERTY = lipschitz(linf_ball([0.6, 0.4, 0.3, 0.5], eps=0.02), L=1.6)
