from verify.spec import linf_ball, lipschitz

# near this applicant the score moves by at most 10 times the largest feature change
PROPERTY = lipschitz(linf_ball([0.6, 0.4, 0.3, 0.5], eps=0.02), L=10.0)
